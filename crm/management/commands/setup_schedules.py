"""Create or update the django-q2 schedules every app registered (crm.schedules)."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

from crm.schedules import ScheduleSpec, registered_schedules


def schedule_fields(spec: ScheduleSpec) -> dict:
    """The Schedule columns a spec sets; next_run is left alone so updates keep the rhythm."""
    if spec.cron:
        return {
            "func": spec.func,
            "schedule_type": Schedule.CRON,
            "cron": spec.cron,
            "minutes": None,
            "repeats": -1,
        }
    return {
        "func": spec.func,
        "schedule_type": Schedule.MINUTES,
        "minutes": spec.minutes,
        "cron": None,
        "repeats": -1,
    }


class Command(BaseCommand):
    help = "Create or update the periodic tasks (idempotent: schedules are matched by name)."

    def handle(self, *args, **options):
        for spec in registered_schedules():
            _schedule, created = Schedule.objects.update_or_create(
                name=spec.name, defaults=schedule_fields(spec)
            )
            every = f"cron {spec.cron}" if spec.cron else f"every {spec.minutes} min"
            verb = "created" if created else "updated"
            self.stdout.write(f"{spec.name}: {verb} ({spec.func}, {every})")
