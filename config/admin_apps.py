"""django.contrib.admin's app config with Nextstep's site (its own module: config.apps
may declare only one default AppConfig)."""

from django.contrib.admin.apps import AdminConfig


class NextstepAdminConfig(AdminConfig):
    """The admin with the role-aware home and the Reports section (crm/admin_site.py)."""

    default_site = "crm.admin_site.NextstepAdminSite"
