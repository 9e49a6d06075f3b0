"""latency: one event per request, a running qcluster; from the API call returning to the
score updated, the enrollment created, and the message handed to the email backend.

Events are sent open-loop at a fixed rate (not one after the other finishes), so a
slow path shows as long latencies rather than as a slow bench. Score and enrollment
are seen by polling the database; the hand-off time is the backend's own timestamp.
"""

from __future__ import annotations

import time

from config.bench.context import Context, percentile
from config.bench.people import api_client, fresh_contacts
from config.bench.processes import Cluster, purge_queue
from config.bench.scenarios.common import cluster_ready, mail_times
from config.bench.setup import BENCH_KIND, BENCH_SEQUENCE
from scoring.models import ScoreChange
from sequences.models import Enrollment

POLL = 0.01


def run(ctx: Context) -> None:
    people = fresh_contacts(ctx.scale.latency_events, "latency")
    by_email = {person.email: person.pk for person in people}
    client = api_client()
    purge_queue()  # segment refreshes for the new people: not what is measured
    returned: dict[int, float] = {}
    seen: dict[str, dict[int, float]] = {"score": {}, "enrollment": {}, "email": {}}
    with Cluster():
        if not cluster_ready():
            ctx.add("latency", "email.p95", "ms", None, note="qcluster did not start")
            return
        start, interval = time.time(), 1 / ctx.scale.latency_rate
        deadline = start + len(people) * interval + ctx.scale.budget
        queue = list(people)
        while time.time() < deadline and _missing(seen, by_email):
            if queue and time.time() >= start + len(returned) * interval:
                person = queue.pop(0)
                response = client.post("/api/v1/events/", _event(person.email), "application/json")
                assert response.status_code == 200, response.content[:300]
                returned[person.pk] = time.time()
            _poll(seen, returned, by_email)
            time.sleep(POLL)
    target = "< 1000" if ctx.engine == "postgresql" else "< 2000"
    for what in ("score", "enrollment", "email"):
        values = [(seen[what][pk] - returned[pk]) * 1000 for pk in seen[what] if pk in returned]
        missing = len(people) - len(values)
        note = f"{missing} of {len(people)} not seen within the time box" if missing else ""
        for share in (0.5, 0.95, 0.99):
            name = f"{what}.p{round(share * 100)}"
            value = percentile(values, share) if not missing else None
            ctx.add(
                "latency",
                name,
                "ms",
                value,
                target=target if name == "email.p95" else "",
                passed=False if missing and name == "email.p95" else None,
                note=note,
            )


def _event(email: str) -> dict:
    return {"type": BENCH_KIND, "email": email, "properties": {"path": "/guide"}}


def _missing(seen, by_email) -> bool:
    return len(seen["email"]) < len(by_email)


def _poll(seen, returned, by_email) -> None:
    pending = [pk for pk in returned if pk not in seen["email"]]
    if not pending:
        return
    now = time.time()
    scored = ScoreChange.objects.filter(contact_id__in=pending, rule__key="bench-requested")
    for pk in scored.values_list("contact_id", flat=True):
        seen["score"].setdefault(pk, now)
    enrolled = Enrollment.objects.filter(contact_id__in=pending, sequence__key=BENCH_SEQUENCE)
    for pk in enrolled.values_list("contact_id", flat=True):
        seen["enrollment"].setdefault(pk, now)
    emails = {email for email, pk in by_email.items() if pk in pending}
    for email, at in mail_times(emails).items():
        seen["email"].setdefault(by_email[email], at)
