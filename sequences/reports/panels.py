"""The reports' panels on the admin dashboard, when crm offers the panel registry."""


def register() -> None:
    """Register the revenue and funnel panels (a no-op until crm.admin_hooks has the hook)."""
    from crm import admin_hooks

    register_panel = getattr(admin_hooks, "register_dashboard_panel", None)
    if register_panel is None:
        return
