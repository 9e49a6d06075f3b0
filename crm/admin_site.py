"""The admin site: a role-aware home and a Reports section, otherwise Django's own admin.

config.apps.NextstepAdminConfig makes this the default site, so `admin.site` and every
`@admin.register` use it. The home shows the "home" dashboard panels the user's roles
see (crm.admin_hooks.register_dashboard_panel) above the usual app list; /admin/reports/
dashboard/ shows the "reports" panels; the Reports menu entry lists both dashboards and
every page registered with crm.admin_hooks.register_report.
"""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path, reverse

from crm.admin_hooks import report_links
from crm.dashboards import (
    PERIODS,
    dashboard_csv_or_none,
    dashboard_render,
    period_days,
)

REPORTS_LABEL = "reports"


class NextstepAdminSite(admin.AdminSite):
    site_header = "Nextstep"
    site_title = "Nextstep"
    index_title = "Customers, signals and sequences"

    def index(self, request, extra_context=None):
        panels = dashboard_render(request, "home")
        csv = dashboard_csv_or_none(request, panels)
        if csv is not None:
            return csv
        return super().index(request, {"dashboard_panels": panels, **(extra_context or {})})

    def get_urls(self):
        return [
            path(
                "reports/dashboard/",
                self.admin_view(self.reports_view),
                name="reports_dashboard",
            ),
            *super().get_urls(),
        ]

    def reports_view(self, request):
        """The reports dashboard: every "reports" panel the user may see, for one period."""
        panels = dashboard_render(request, "reports")
        csv = dashboard_csv_or_none(request, panels)
        if csv is not None:
            return csv
        context = {
            **self.each_context(request),
            "title": "Reports",
            "dashboard_panels": panels,
            "days": period_days(request),
            "periods": PERIODS,
            "report_links": [
                (link.title, reverse(link.url_name)) for link in report_links(request.user)
            ],
        }
        return TemplateResponse(request, "admin/reports/dashboard.html", context)

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is None and request.user.is_active and request.user.is_staff:
            # First: reports are what most people open the admin for.
            app_list.insert(0, self._reports_app(request))
        return app_list

    def _reports_app(self, request) -> dict:
        """The Reports menu entry, shaped like an app so the index and sidebar list it."""
        dashboard_url = reverse(f"{self.name}:reports_dashboard")
        entries = [("Dashboard", "dashboard", dashboard_url)]
        entries += [
            (link.title, link.url_name.rsplit(":", 1)[-1], reverse(link.url_name))
            for link in report_links(request.user)
        ]
        return {
            "name": "Reports",
            "app_label": REPORTS_LABEL,
            "app_url": dashboard_url,
            "has_module_perms": True,
            "models": [
                {
                    "name": title,
                    "object_name": object_name,
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
                for title, object_name, url in entries
            ],
        }
