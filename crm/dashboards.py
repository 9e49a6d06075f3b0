"""Render the dashboards' panels (crm.admin_hooks.register_dashboard_panel) for one request.

The admin site (crm.admin_site) shows the "home" panels on the admin index and the
"reports" panels on the reports dashboard; both answer ?csv=<chart key> from here, so a
panel's charts download as CSV without the panel knowing the URL.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.http import HttpRequest, StreamingHttpResponse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

from crm.admin_hooks import DashboardPanel, dashboard_panels
from crm.charts import Chart, csv_export_or_none

logger = logging.getLogger(__name__)

#: The periods a dashboard offers (days); panels read the chosen one with period_days().
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


@dataclass(frozen=True)
class PanelBlock:
    """One piece of a panel's body: a chart (drawn with its table) or HTML."""

    chart: Chart | None = None
    html: SafeString = SafeString("")

    @property
    def is_chart(self) -> bool:
        return self.chart is not None


@dataclass
class RenderedPanel:
    panel: DashboardPanel
    blocks: list[PanelBlock] = field(default_factory=list)
    error: str = ""

    @property
    def charts(self) -> list[Chart]:
        return [block.chart for block in self.blocks if block.chart is not None]


def period_days(request: HttpRequest, default: int = DEFAULT_PERIOD) -> int:
    """The dashboard's period in days from ?days= (one of PERIODS), else the default."""
    try:
        days = int(request.GET.get("days", default))
    except ValueError:
        return default
    return days if days in PERIODS else default


def dashboard_render(request: HttpRequest, dashboard: str) -> list[RenderedPanel]:
    """The panels this user may see, rendered; a failing panel shows an error, not a 500."""
    rendered = []
    for panel in dashboard_panels(dashboard, request.user):
        try:
            blocks = list(_blocks(panel.render(request)))
        except Exception:
            # One broken panel must not take the home page down; the log has the traceback.
            logger.exception("Dashboard panel %s failed", panel.key)
            rendered.append(RenderedPanel(panel, error="This panel could not be shown."))
            continue
        if blocks:
            rendered.append(RenderedPanel(panel, blocks))
    return rendered


def dashboard_csv_or_none(
    request: HttpRequest, panels: Iterable[RenderedPanel]
) -> StreamingHttpResponse | None:
    """Answer ?csv=<chart key> from the rendered panels' charts (404 for an unknown key)."""
    return csv_export_or_none(request, (chart for item in panels for chart in item.charts))


def _blocks(content: object) -> Iterable[PanelBlock]:
    if content is None or content == "":
        return
    if isinstance(content, Chart):
        yield PanelBlock(chart=content)
    elif isinstance(content, str):
        yield PanelBlock(html=conditional_escape(content))
    elif isinstance(content, Iterable):
        for item in content:
            yield from _blocks(item)
    else:
        raise TypeError(
            f"A dashboard panel returns a Chart, HTML or a list of them, not {content!r}."
        )
