"""A registry of periodic tasks that `manage.py setup_schedules` writes to django-q2.

crm cannot import scoring or sequences, so each app registers its schedules from
its AppConfig.ready():

    register_schedule("scoring: apply score decay", "scoring.tasks.apply_score_decay_task",
                      minutes=60)

Names are the identity: running setup_schedules again updates the schedule with
that name instead of adding another.
"""

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class ScheduleSpec:
    """One periodic task: run `func` (a dotted path) every `minutes`, or on a `cron` line."""

    name: str
    func: str
    minutes: int | None = None
    cron: str = ""


_schedules: dict[str, ScheduleSpec] = {}


def register_schedule(name: str, func: str, *, minutes: int | None = None, cron: str = "") -> None:
    """Add a periodic task; give exactly one of `minutes` or `cron` (cron needs croniter).

    Registering the same schedule again is a no-op.
    """
    if (minutes is None) == (not cron):
        raise ImproperlyConfigured(f"Schedule {name!r}: give exactly one of minutes or cron.")
    if minutes is not None and minutes < 1:
        raise ImproperlyConfigured(f"Schedule {name!r}: minutes must be 1 or more.")
    spec = ScheduleSpec(name=name, func=func, minutes=minutes, cron=cron)
    registered = _schedules.get(name)
    if registered is not None and registered != spec:
        raise ImproperlyConfigured(f"Schedule {name!r} is already registered differently.")
    _schedules[name] = spec


def unregister_schedule(name: str) -> None:
    """Remove a schedule from the registry (for tests); unknown names are ignored."""
    _schedules.pop(name, None)


def registered_schedules() -> list[ScheduleSpec]:
    """Return the registered schedules ordered by name."""
    return sorted(_schedules.values(), key=lambda spec: spec.name)
