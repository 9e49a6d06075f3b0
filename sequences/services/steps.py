"""What each non-email step does; each returns a Move for the engine to apply."""

import datetime

from crm.predictions.send_times import best_time_decide
from crm.services import contact_upsert, lifecycle_stage_change, task_create
from sequences.conditions import (
    activity_tree,
    contact_facts,
    contact_matches,
    did_since,
    event_label,
)
from sequences.gate import contact_zone
from sequences.models import Enrollment
from sequences.services.moves import Move

#: The best-time wait's history event: the prefix + the hour's source, or OUTSIDE.
BEST_TIME_EVENT_PREFIX = "best_time_"
BEST_TIME_OUTSIDE = "best_time_outside_window"

State = Enrollment.State


def step_run(enrollment: Enrollment, step: dict, now: datetime.datetime) -> Move:
    """Run one step of any type but send_email."""
    return _HANDLERS[step["type"]](enrollment, step, step.get("config", {}), now)


def _duration(value: dict) -> datetime.timedelta:
    return datetime.timedelta(
        days=value.get("days", 0), hours=value.get("hours", 0), minutes=value.get("minutes", 0)
    )


def wait_end(start: datetime.datetime, value: dict) -> datetime.datetime:
    """When a wait of `value` started at `start` ends; business days skip Saturday and Sunday.

    Business days are counted on the calendar of the UTC date (the site's zone), so a
    one-business-day wait started on Friday ends on Monday at the same time.
    """
    at = start + _duration(value)
    remaining = value.get("business_days", 0)
    while remaining > 0:
        at += datetime.timedelta(days=1)
        if at.weekday() < 5:
            remaining -= 1
    return at


def _wait_duration(enrollment, step, config, now) -> Move:
    at = wait_end(now, config["duration"])
    return Move(at=at, event="wait", reason=f"until {at:%Y-%m-%d %H:%M} UTC")


def _wait_until_time(enrollment, step, config, now) -> Move:
    zone = contact_zone(enrollment.contact)
    local = now.astimezone(zone)
    wanted = datetime.time.fromisoformat(config["time"])
    weekdays = config.get("weekdays") or list(range(7))
    for days_ahead in range(8):
        day = local.date() + datetime.timedelta(days=days_ahead)
        at = datetime.datetime.combine(day, wanted, tzinfo=zone)
        if at >= local and day.weekday() in weekdays:
            break
    at = at.astimezone(datetime.UTC)
    return Move(at=at, event="wait", reason=f"until {config['time']} in {zone.key}")


def _wait_until_best_time(enrollment, step, config, now) -> Move:
    # Before an email step: the gate, quiet hours and the cap still decide at send time.
    # The event's kind records the decision (best_time_contact / _audience / _default,
    # or best_time_outside_window) so the results can split the next email by it without
    # a query at send time (sequences/reports/best_time.py).
    decision = best_time_decide(
        contact=enrollment.contact, now=now, within_hours=config["within_hours"]
    )
    best = decision.best
    used = f"{best.hour:02d}:00 local, the {best.source}'s best hour"
    if not decision.at_best_time:
        return Move(
            at=now,
            event=BEST_TIME_OUTSIDE,
            reason=f"now ({used} is not within the window)",
        )
    return Move(
        at=decision.at,
        event=f"{BEST_TIME_EVENT_PREFIX}{best.source}",
        reason=f"until {decision.at:%Y-%m-%d %H:%M} UTC ({used})",
    )


def _wait_until_date(enrollment, step, config, now) -> Move:
    raw = (enrollment.contact.properties or {}).get(config["property"])
    try:
        date = datetime.date.fromisoformat(str(raw)[:10])
    except ValueError:
        return Move.end(State.EXITED, f"missing_data:{config['property']}")
    date += datetime.timedelta(days=config.get("offset_days", 0))
    wanted = datetime.time.fromisoformat(config.get("time", "09:00"))
    at = datetime.datetime.combine(date, wanted, tzinfo=contact_zone(enrollment.contact))
    at = max(at.astimezone(datetime.UTC), now)
    return Move(at=at, event="wait", reason=f"until {date:%Y-%m-%d} ({config['property']})")


def _wait_for_event(enrollment, step, config, now) -> Move:
    version = enrollment.version
    yes_step = config.get("yes_step") or _next_key(version, step)
    timeout_step = config.get("timeout_step") or _next_key(version, step)
    at = wait_end(now, config["timeout"])
    waiting_for = {"event": activity_tree(config["event"]), "yes_step": yes_step}
    return Move(
        to=timeout_step,
        at=at,
        state=State.WAITING,
        waiting_for=waiting_for,
        event="wait_for_event",
        reason=f"{event_label(config['event'])} until {at:%Y-%m-%d %H:%M} UTC",
    )


def _branch_if(enrollment, step, config, now) -> Move:
    # "event": did they do it since enrolling; "condition": who they are (the old
    # {"activity": …} shape of a condition is an event).
    event = config.get("event")
    condition = config.get("condition")
    if event is None and isinstance(condition, dict) and "activity" in condition:
        event = condition
    if event is not None:
        passed = did_since(enrollment.contact, event, enrollment.enrolled_at)
    else:
        passed = contact_matches(condition, contact_facts(enrollment.contact))
    target = config.get("yes_step") if passed else config.get("no_step")
    return Move(to=target or None, event="branch", reason="yes" if passed else "no")


def _notify_owner(enrollment, step, config, now) -> Move:
    sequence, contact = enrollment.sequence, enrollment.contact
    owner = contact.owner or sequence.owner
    task_create(
        title=config.get("title") or f"{sequence.name}: {contact}",
        description=config.get("description", ""),
        contact=contact,
        owner=owner,
        due_at=now,
        source=f"sequence:{sequence.key}",
    )
    return Move(event="notified", reason=f"user {owner.pk if owner else 'none'}")


def _create_task(enrollment, step, config, now) -> Move:
    sequence, contact = enrollment.sequence, enrollment.contact
    if config.get("assignee", "contact_owner") == "sequence_owner":
        owner = sequence.owner
    else:
        owner = contact.owner or sequence.owner
    task = task_create(
        title=config["title"],
        description=config.get("description", ""),
        contact=contact,
        owner=owner,
        due_at=now + datetime.timedelta(days=config.get("due_in_days", 1)),
        source=f"sequence:{sequence.key}",
    )
    return Move(event="task_created", reason=f"task {task.pk}")


def _update_contact(enrollment, step, config, now) -> Move:
    contact, source = enrollment.contact, f"sequence:{enrollment.sequence.key}"
    if config.get("add_tags") or config.get("properties"):
        contact_upsert(
            email=contact.email,
            tags=list(config.get("add_tags", [])),
            properties=dict(config.get("properties", {})),
        )
    if config.get("lifecycle_stage"):
        lifecycle_stage_change(contact=contact, stage=config["lifecycle_stage"], source=source)
    return Move(event="contact_updated", reason=", ".join(sorted(config)))


def _end(enrollment, step, config, now) -> Move:
    return Move.end(State.COMPLETED, "end_step")


def _next_key(version, step) -> str:
    following = version.step_after(step["key"])
    return following["key"] if following else ""


_HANDLERS = {
    "wait_duration": _wait_duration,
    "wait_until_time": _wait_until_time,
    "wait_until_date": _wait_until_date,
    "wait_until_best_time": _wait_until_best_time,
    "wait_for_event": _wait_for_event,
    "branch_if": _branch_if,
    "notify_owner": _notify_owner,
    "create_task": _create_task,
    "update_contact": _update_contact,
    "end": _end,
}
