from django.apps import AppConfig

SWEEP_EVERY_MINUTES = 1


class SequencesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sequences"
    verbose_name = "Sequences"

    def ready(self):
        from crm.demo import register_demo_extension
        from crm.schedules import register_schedule
        from crm.signals import activities_recorded
        from sequences import config_sections  # noqa: F401  (registers the YAML sections)
        from sequences.demo import install_demo_playbooks
        from sequences.receivers import react_to_activities

        activities_recorded.connect(
            react_to_activities, dispatch_uid="sequences.react_to_activities"
        )
        register_schedule(
            "sequences: run due enrollments",
            "sequences.tasks.run_due_enrollments_task",
            minutes=SWEEP_EVERY_MINUTES,
        )
        register_demo_extension("sequences", install_demo_playbooks)
