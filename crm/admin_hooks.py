"""Hooks that let downstream apps (scoring, sequences) extend the contact page.

crm never imports those apps, so they register here from their own admin
modules instead:

    from crm.admin_hooks import register_contact_inline, register_contact_panel

    register_contact_inline(EnrollmentInline)          # an InlineModelAdmin on crm.Contact
    register_contact_panel("Score", render_score)      # render(request, contact) -> html

A panel's render returns HTML: return a SafeString (render_to_string, format_html);
a plain str is escaped. Return "" to show nothing for this contact or user.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.admin.options import InlineModelAdmin
from django.http import HttpRequest

#: render(request, contact) -> HTML for the panel's body.
PanelRender = Callable[[HttpRequest, object], str]


@dataclass(frozen=True)
class ContactPanel:
    title: str
    render: PanelRender


_inlines: list[type[InlineModelAdmin]] = []
_panels: list[ContactPanel] = []


def register_contact_inline(inline_class: type[InlineModelAdmin]) -> type[InlineModelAdmin]:
    """Add an inline to the contact page; usable as a class decorator, idempotent."""
    if inline_class not in _inlines:
        _inlines.append(inline_class)
    return inline_class


def unregister_contact_inline(inline_class: type[InlineModelAdmin]) -> None:
    """Remove an inline registered earlier (tests use this to clean up)."""
    if inline_class in _inlines:
        _inlines.remove(inline_class)


def register_contact_panel(title: str, render: PanelRender) -> ContactPanel:
    """Add a titled section below the contact form; re-registering a title replaces it."""
    panel = ContactPanel(title=title, render=render)
    unregister_contact_panel(title)
    _panels.append(panel)
    return panel


def unregister_contact_panel(title: str) -> None:
    """Remove the panel with this title, if any."""
    _panels[:] = [panel for panel in _panels if panel.title != title]


def contact_inlines() -> tuple[type[InlineModelAdmin], ...]:
    """The inlines other apps registered, in registration order."""
    return tuple(_inlines)


def contact_panels() -> tuple[ContactPanel, ...]:
    """The panels other apps registered, in registration order."""
    return tuple(_panels)


# --- The contact page's summary header and timeline wording ----------------------------------
#
# The header at the top of the contact page shows, at a glance, what crm knows (stage,
# owner, consent) and what downstream apps add (scoring: the score and its top reasons;
# sequences: current sequences and the next step). Each app registers its part:
#
#     register_contact_summary("Score", render_score_summary, position=20)
#
# The timeline says what happened in words; an app whose activities crm cannot phrase
# registers a describer for its kinds:
#
#     register_activity_describer("handoff_reassigned", describe_reassignment)
#
# A describer takes (activity, users), users mapping the page's user ids to names
# (see ACTIVITY_USER_KEYS), and returns one plain-text sentence (it is escaped).

#: Activity property keys that hold a staff user's id; the timeline looks them up at once.
ACTIVITY_USER_KEYS = ("author_id", "owner_id", "by_user_id", "from_owner_id", "to_owner_id")

#: describe(activity, users) -> a sentence.
ActivityDescriber = Callable[[object, dict[int, str]], str]


@dataclass(frozen=True)
class ContactSummaryPart:
    label: str
    render: PanelRender
    position: int


_summary_parts: list[ContactSummaryPart] = []
_describers: dict[str, ActivityDescriber] = {}


def register_contact_summary(
    label: str, render: PanelRender, *, position: int = 100
) -> ContactSummaryPart:
    """Add a labelled part to the contact page's header; re-registering a label replaces it."""
    part = ContactSummaryPart(label=label, render=render, position=position)
    unregister_contact_summary(label)
    _summary_parts.append(part)
    return part


def unregister_contact_summary(label: str) -> None:
    """Remove the header part with this label, if any."""
    _summary_parts[:] = [part for part in _summary_parts if part.label != label]


def contact_summary_parts() -> tuple[ContactSummaryPart, ...]:
    """The header parts other apps registered, by position."""
    return tuple(sorted(_summary_parts, key=lambda part: part.position))


def register_activity_describer(kind: str, describe: ActivityDescriber) -> ActivityDescriber:
    """Phrase activities of this kind on the contact timeline; usable as a decorator factory."""
    _describers[kind] = describe
    return describe


def activity_describer(kind: str) -> ActivityDescriber | None:
    """The describer an app registered for this kind, if any."""
    return _describers.get(kind)
