"""Hooks that let downstream apps (scoring, sequences) extend crm's admin pages.

The contact page (inlines and panels), the dashboards (the admin home and the reports
dashboard: register_dashboard_panel) and the Reports menu (register_report).

crm never imports those apps, so they register here from their own admin
modules instead:

    from crm.admin_hooks import register_contact_inline, register_contact_panel

    register_contact_inline(EnrollmentInline)          # an InlineModelAdmin on crm.Contact
    register_contact_panel("Score", render_score)      # render(request, contact) -> html

A panel's render returns HTML: return a SafeString (render_to_string, format_html);
a plain str is escaped. Return "" to show nothing for this contact or user.
"""

from collections.abc import Callable, Iterable
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


# --- Dashboards: the admin home and the reports dashboard ------------------------------------
#
# Downstream apps add panels without crm importing them, from their admin module:
#
#     from crm.admin_hooks import register_dashboard_panel
#
#     register_dashboard_panel(
#         "sequences-last-7-days", "Active sequences, last 7 days", render_sequences,
#         roles=["Marketing"], permission="sequences.view_sequence", order=10,
#     )
#
# render(request) returns the panel's body: a crm.charts.Chart (drawn with its table and CSV
# link), HTML (a SafeString; a plain str is escaped), or a list of those. Return "" or []
# to hide the panel for this request. A chart's ?csv=<key> is answered by the page
# that shows it, so chart keys must be unique across all panels of a dashboard.

#: The dashboards panels can go on: the admin home (by role) and the reports section.
DASHBOARDS = ("home", "reports")
#: The role groups (crm/migrations/0004_roles.py; config/access.py is the role matrix).
MARKETING = "Marketing"
SALES = "Sales"
SUCCESS = "Customer success"

#: render(request) -> a Chart, HTML, or a list of them.
DashboardRender = Callable[[HttpRequest], object]


@dataclass(frozen=True)
class DashboardPanel:
    key: str
    title: str
    render: DashboardRender
    dashboard: str = "home"
    #: Group names that see the panel (any of them); empty: every staff user. Superusers see all.
    roles: tuple[str, ...] = ()
    #: A permission the user must also hold ("app_label.codename"); empty: none.
    permission: str = ""
    order: int = 100
    #: Span the whole row instead of one column of the grid.
    wide: bool = False

    def is_visible_to(self, user) -> bool:
        """May this user see the panel? (role groups and permission, superusers always)."""
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if self.permission and not user.has_perm(self.permission):
            return False
        return not self.roles or bool(set(self.roles) & user_roles(user))


_dashboard_panels: dict[str, DashboardPanel] = {}


def register_dashboard_panel(
    key: str,
    title: str,
    render: DashboardRender,
    *,
    dashboard: str = "home",
    roles: Iterable[str] = (),
    permission: str = "",
    order: int = 100,
    wide: bool = False,
) -> DashboardPanel:
    """Add a panel to a dashboard ("home" or "reports"); re-registering a key replaces it."""
    if dashboard not in DASHBOARDS:
        raise ValueError(f"Dashboard must be one of {DASHBOARDS}, not {dashboard!r}.")
    if permission and permission.count(".") != 1:
        raise ValueError(f"Permission {permission!r} must read 'app_label.codename'.")
    panel = DashboardPanel(
        key=key,
        title=title,
        render=render,
        dashboard=dashboard,
        roles=tuple(roles),
        permission=permission,
        order=order,
        wide=wide,
    )
    _dashboard_panels[key] = panel
    return panel


def unregister_dashboard_panel(key: str) -> None:
    """Remove the panel with this key, if any (tests use this to clean up)."""
    _dashboard_panels.pop(key, None)


def dashboard_panels(dashboard: str, user=None) -> tuple[DashboardPanel, ...]:
    """A dashboard's panels in order (then by title); only those the user may see if given."""
    panels = [panel for panel in _dashboard_panels.values() if panel.dashboard == dashboard]
    if user is not None:
        panels = [panel for panel in panels if panel.is_visible_to(user)]
    return tuple(sorted(panels, key=lambda panel: (panel.order, panel.title)))


def user_roles(user) -> set[str]:
    """The user's group names, read once per user object (panels ask for each panel)."""
    cached = getattr(user, "_nextstep_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._nextstep_roles = cached
    return cached


# --- The reports menu: one admin menu entry listing every report page ------------------------
#
#     register_report("Deliverability", "admin:sequences_deliverability",
#                     permission="sequences.view_circuitbreakertrip", order=20)


@dataclass(frozen=True)
class ReportLink:
    title: str
    url_name: str
    permission: str = ""
    order: int = 100

    def is_visible_to(self, user) -> bool:
        return (
            user.is_active
            and user.is_staff
            and (not self.permission or user.has_perm(self.permission))
        )


_reports: dict[str, ReportLink] = {}


def register_report(title: str, url_name: str, *, permission: str = "", order: int = 100):
    """List a report page (a named admin URL) under Reports; re-registering a URL replaces it."""
    link = ReportLink(title=title, url_name=url_name, permission=permission, order=order)
    _reports[url_name] = link
    return link


def unregister_report(url_name: str) -> None:
    """Remove a report link registered earlier."""
    _reports.pop(url_name, None)


def report_links(user=None) -> tuple[ReportLink, ...]:
    """The report pages in menu order; only those the user may open if given."""
    links = [link for link in _reports.values() if user is None or link.is_visible_to(user)]
    return tuple(sorted(links, key=lambda link: (link.order, link.title)))
