"""Mailed at the best send time vs not, for sequences with a "wait for the best time" step.

The wait step records its decision as the enrollment's history event
(sequences.services.steps: `best_time_contact`, `best_time_audience`,
`best_time_default`, or `best_time_outside_window` when the best hour did not come within
the window and the email went at once). The email right after the step is grouped by that
decision, read at report time in one grouped query: nothing is looked up at send time.

Honest caveat (shown with the table): the groups are not random. Whether someone's best
hour falls within the window depends on their time zone, their habits and when they
entered, so a difference between the rows is an association, not the effect of sending
at the best time; a holdout or an A/B test measures that.
"""

from __future__ import annotations

import datetime

from django.db.models import Count, Exists, OuterRef, Q, Subquery

from crm.charts import Chart, data_table, integer, percent
from sequences.models import EnrollmentEvent, EspEvent, OutboundMessage, Sequence, SequenceVersion

EVENT_PREFIX = "best_time_"
GROUPS = {
    "best_time_contact": "At the contact's own best hour",
    "best_time_audience": "At the audience's best hour (too few own opens)",
    "best_time_default": "At the default hour (nobody has opened yet)",
    "best_time_outside_window": "Not at the best time (it did not come within the window)",
}
CAVEAT = (
    "The email right after a “wait for the contact's best send time” step, by what the step "
    "decided. The groups are not chosen at random (time zones, habits and entry times "
    "differ), so read a difference as an association, not as the effect of the send time; "
    "a holdout or an A/B test measures the effect. Quiet hours and the frequency cap may "
    "still have moved a send; opens include machine opens."
)


def best_time_steps(*, sequence: Sequence, version_pk: int | None = None) -> set[str]:
    """Keys of email steps that follow a best-time wait in the sequence's versions."""
    versions = SequenceVersion.objects.filter(sequence=sequence)
    if version_pk:
        versions = versions.filter(pk=version_pk)
    keys = set()
    for steps in versions.values_list("steps", flat=True):
        for before, after in zip(steps, steps[1:], strict=False):
            if before.get("type") == "wait_until_best_time" and after.get("type") == "send_email":
                keys.add(after["key"])
    return keys


def best_time_results(
    *,
    sequence: Sequence,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    version_pk: int | None = None,
) -> list[dict]:
    """Per decision: emails sent, opened, clicked and converted (one grouped query).

    Empty when the sequence has no best-time step.
    """
    steps = best_time_steps(sequence=sequence, version_pk=version_pk)
    return _results(sequence, steps, since, until, version_pk) if steps else []


def _results(sequence, steps, since, until, version_pk) -> list[dict]:
    messages = OutboundMessage.objects.filter(
        enrollment__sequence=sequence,
        step__in=steps,
        state=OutboundMessage.State.SENT,
    )
    if version_pk:
        messages = messages.filter(enrollment__version_id=version_pk)
    if since:
        messages = messages.filter(sent_at__date__gte=since)
    if until:
        messages = messages.filter(sent_at__date__lte=until)
    decision = (
        EnrollmentEvent.objects.filter(
            enrollment_id=OuterRef("enrollment_id"),
            kind__startswith=EVENT_PREFIX,
            occurred_at__lte=OuterRef("created_at"),
        )
        .order_by("-occurred_at", "-pk")
        .values("kind")[:1]
    )

    def esp(kind: str) -> Exists:
        return Exists(EspEvent.objects.filter(message_id=OuterRef("pk"), kind=kind))

    rows = (
        messages.annotate(
            group=Subquery(decision),
            opened=esp(EspEvent.Kind.OPENED),
            clicked=esp(EspEvent.Kind.CLICKED),
        )
        .order_by()
        .values("group")
        .annotate(
            sent=Count("pk"),
            opened_count=Count("pk", filter=Q(opened=True)),
            clicked_count=Count("pk", filter=Q(clicked=True)),
            converted=Count("pk", filter=Q(enrollment__state="converted")),
        )
    )
    by_group = {row["group"]: row for row in rows}
    results = []
    for kind, label in GROUPS.items():
        row = by_group.get(kind)
        if row is None:
            continue
        sent = row["sent"]
        results.append(
            {
                "group": kind,
                "label": label,
                "sent": sent,
                "opened": row["opened_count"],
                "clicked": row["clicked_count"],
                "converted": row["converted"],
                "open_rate": row["opened_count"] / sent,
                "click_rate": row["clicked_count"] / sent,
                "conversion_rate": row["converted"] / sent,
            }
        )
    return results


def best_time_table(results: list[dict]) -> Chart:
    return data_table(
        key="best-time",
        title="Mailed at the best send time vs not",
        columns=("Sent", "Emails", "Opened", "Clicked", "Converted"),
        rows=[
            (r["label"], r["sent"], r["open_rate"], r["click_rate"], r["conversion_rate"])
            for r in results
        ],
        formats=(None, integer, percent(1), percent(1), percent(1)),
        description=CAVEAT,
        empty_text="No email after a best-time wait was sent in this period.",
    )


def best_time_charts(
    *,
    sequence: Sequence,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    version_pk: int | None = None,
) -> list[Chart]:
    """The results page's best-time table, or nothing when the sequence has no such step."""
    steps = best_time_steps(sequence=sequence, version_pk=version_pk)
    if not steps:
        return []
    return [best_time_table(_results(sequence, steps, since, until, version_pk))]
