from django.apps import AppConfig

SWEEP_EVERY_MINUTES = 1
#: `unknown` emails: ask the ESP's API about them and count them for the alert.
UNKNOWN_RECONCILE_EVERY_MINUTES = 10
#: Daily, early morning: a run enrolls everyone whose date is due today, at most once.
DATE_TRIGGERS_CRON = "0 6 * * *"


class SequencesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sequences"
    verbose_name = "Sequences"

    def ready(self):
        from crm.demo import DEMO_REPLAY, register_demo_extension
        from crm.schedules import register_schedule
        from crm.signals import activities_recorded
        from sequences import config_sections  # noqa: F401  (registers the YAML sections)
        from sequences.demo import install_demo_playbooks
        from sequences.demo_journeys import demo_run_journeys
        from sequences.receivers import react_to_activities

        self._connect_esp_webhooks()

        activities_recorded.connect(
            react_to_activities, dispatch_uid="sequences.react_to_activities"
        )
        register_schedule(
            "sequences: run due enrollments",
            "sequences.tasks.run_due_enrollments_task",
            minutes=SWEEP_EVERY_MINUTES,
        )
        register_schedule(
            "sequences: enroll date triggers",
            "sequences.tasks.enroll_date_triggers_task",
            cron=DATE_TRIGGERS_CRON,
        )
        from crm.privacy_hooks import register_privacy_eraser, register_privacy_exporter
        from sequences.privacy import erase_contact_email_traces, export_contact_messages

        register_privacy_exporter("sequences", export_contact_messages)
        register_privacy_eraser("sequences", erase_contact_email_traces)
        from crm.services.mail import register_system_email_sender
        from sequences.services.system_mail import system_email_deliver

        # Every system email (confirmations, staff notices, alerts) goes through the ledger.
        register_system_email_sender(system_email_deliver)
        register_schedule(
            "sequences: reconcile unknown emails",
            "sequences.tasks.reconcile_unknown_messages_task",
            minutes=UNKNOWN_RECONCILE_EVERY_MINUTES,
        )
        register_schedule(
            "sequences: decide A/B winners",
            "sequences.tasks.decide_variant_winners_task",
            minutes=60,
        )
        register_demo_extension("sequences", install_demo_playbooks)
        register_demo_extension("sequences: journeys", demo_run_journeys, phase=DEMO_REPLAY)

    def _connect_esp_webhooks(self):
        """The anymail inbox receiver, its processing schedules and the webhook check."""
        from anymail.signals import tracking

        from crm.schedules import register_schedule
        from sequences import checks  # noqa: F401  (registers the system check)
        from sequences.webhooks import store_tracking_event

        tracking.connect(store_tracking_event, dispatch_uid="sequences.store_tracking_event")
        register_schedule(
            "sequences: process ESP events",
            "sequences.esp.tasks.process_esp_events_task",
            minutes=SWEEP_EVERY_MINUTES,
        )
        register_schedule(
            "sequences: reconcile ESP suppression lists",
            "sequences.esp.tasks.reconcile_suppressions_task",
            cron="15 3 * * *",
        )
        register_schedule(
            "sequences: sunset inactive contacts",
            "sequences.esp.tasks.sunset_inactive_task",
            cron="45 3 * * *",
        )
