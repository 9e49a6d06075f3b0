from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sequences.reports"
    label = "revenue"
    verbose_name = "Revenue reports"

    def ready(self):
        from crm.signals import activities_recorded
        from sequences.reports.receivers import count_activities

        # Every fact the reports count arrives on the bus (sends, ESP events, orders,
        # deals, handoffs): counted in the transaction that records it.
        activities_recorded.connect(count_activities, dispatch_uid="revenue.count_activities")
        from sequences.reports import panels

        panels.register()
        from crm.demo import DEMO_HISTORY, register_demo_extension
        from sequences.reports.demo import demo_revenue_history

        # Before the replays: its orders and clicks are history that scoring and the
        # sequence engine then see like any other.
        register_demo_extension("revenue history", demo_revenue_history, phase=DEMO_HISTORY)
