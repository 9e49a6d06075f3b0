from django.apps import AppConfig

DECAY_EVERY_MINUTES = 60
SLA_CHECK_EVERY_MINUTES = 1
#: Rising intent looks at the last 7 days: hourly keeps the flag within the hour.
INTENT_EVERY_MINUTES = 60


class ScoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "scoring"
    verbose_name = "Lead scoring and handoff"

    def ready(self):
        from crm.demo import DEMO_ANALYSIS, DEMO_REPLAY, register_demo_extension
        from crm.schedules import register_schedule
        from crm.signals import activities_attached, activities_recorded
        from scoring import config_sections  # noqa: F401  (registers scoring's config sections)
        from scoring.demo import demo_replay_scores, install_demo_scoring
        from scoring.receivers import score_attached_activities, score_recorded_activities
        from scoring.tasks import FIT_REFRESH_EVERY_MINUTES

        activities_recorded.connect(
            score_recorded_activities, dispatch_uid="scoring.score_recorded_activities"
        )
        activities_attached.connect(
            score_attached_activities, dispatch_uid="scoring.score_attached_activities"
        )
        register_schedule(
            "scoring: apply score decay",
            "scoring.tasks.apply_score_decay_task",
            minutes=DECAY_EVERY_MINUTES,
        )
        register_schedule(
            "scoring: check handoff SLAs",
            "scoring.tasks.check_handoff_sla_task",
            minutes=SLA_CHECK_EVERY_MINUTES,
        )
        register_schedule(
            "scoring: refresh fit scores",
            "scoring.tasks.refresh_fit_scores_task",
            minutes=FIT_REFRESH_EVERY_MINUTES,
        )
        register_schedule(
            "scoring: rising intent",
            "scoring.tasks.refresh_rising_intent_task",
            minutes=INTENT_EVERY_MINUTES,
        )
        from crm.privacy_hooks import register_privacy_exporter
        from scoring.privacy import export_contact_scores

        register_privacy_exporter("scoring", export_contact_scores)
        register_demo_extension("scoring", install_demo_scoring)
        register_demo_extension("scoring history", demo_replay_scores, phase=DEMO_REPLAY)
        from scoring.intent import demo_rising_intent

        register_demo_extension("rising intent", demo_rising_intent, phase=DEMO_ANALYSIS)
