from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    """A separate app inside crm: its own migrations never collide with crm's."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "crm.predictions"
    label = "predictions"
    verbose_name = "Predictions"

    def ready(self):
        from crm.predictions import tasks
        from crm.predictions.privacy import export_contact_predictions
        from crm.privacy_hooks import register_privacy_exporter
        from crm.schedules import register_schedule

        register_privacy_exporter("predictions", export_contact_predictions)
        from crm.demo import DEMO_ANALYSIS, register_demo_extension
        from crm.predictions.demo import demo_predictions

        register_demo_extension("predictions", demo_predictions, phase=DEMO_ANALYSIS)

        register_schedule(
            "predictions: refit purchase predictions",
            "crm.predictions.tasks.refit_predictions_task",
            cron=tasks.REFIT_CRON,
        )
        register_schedule(
            "predictions: calibration check",
            "crm.predictions.tasks.calibrate_predictions_task",
            cron=tasks.CALIBRATION_CRON,
        )
        register_schedule(
            "predictions: missed milestones",
            "crm.predictions.tasks.check_milestones_task",
            minutes=tasks.MILESTONES_EVERY_MINUTES,
        )
        register_schedule(
            "predictions: best send times",
            "crm.predictions.tasks.refresh_send_times_task",
            cron=tasks.SEND_TIMES_CRON,
        )
