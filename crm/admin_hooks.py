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
