from django.apps import AppConfig


class CrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from crm import config_sections  # noqa: F401  (registers crm's config-as-code sections)
        from crm.privacy_hooks import register_privacy_eraser
        from crm.services.imports import contact_imports_erase

        # A previewed, unconfirmed CSV import holds the address until it expires.
        register_privacy_eraser(
            "crm.ContactImport", lambda contact: contact_imports_erase(email=contact.email)
        )
        self.connect_segments()

    def connect_segments(self):
        from crm import tasks
        from crm.receivers import refresh_segments_for_activities
        from crm.schedules import register_schedule
        from crm.signals import activities_recorded

        activities_recorded.connect(
            refresh_segments_for_activities, dispatch_uid="crm.refresh_segments_for_activities"
        )
        register_schedule(
            "crm: evaluate segments",
            "crm.tasks.evaluate_segments_task",
            minutes=tasks.EVALUATE_SEGMENTS_EVERY_MINUTES,
        )
        register_schedule(
            "crm: expire staged imports", "crm.tasks.expire_staged_imports_task", minutes=60
        )
        register_schedule(
            "crm: refresh segments of changed contacts",
            "crm.tasks.refresh_recently_changed_contacts_task",
            minutes=tasks.RECENTLY_CHANGED_EVERY_MINUTES,
        )
