"""webhook: delivery events through anymail's real tracking views (basic auth, parsing,
our tracking receiver, the inbox), then the inbox processed by its task.

ESPs post differently: Postmark and Mailgun send one event per POST, SendGrid batches
many events into one POST (Amazon SES via SNS: one per POST). So two rates are measured:
- `accepted`: Postmark's shape, one event per POST (ack p50/p99 are of these POSTs);
- `accepted_batched`: SendGrid's shape, BATCH events per POST: events / time in POSTs.
inbox: events processed per second by `process_esp_events_task`, until none is pending.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

from django.conf import settings
from django.test import Client

from config.bench.context import Context, percentile
from config.bench.scenarios.common import per_second
from sequences.esp.tasks import process_esp_events_task
from sequences.models import EspEvent, OutboundMessage

URL = "/anymail/postmark/tracking/"
BATCHED_URL = "/anymail/sendgrid/tracking/"
#: Events per SendGrid POST: SendGrid batches by size and time; 100 is a modest batch.
BATCH = 100


def run(ctx: Context) -> None:
    count = ctx.scale.webhook_events
    sent = list(
        OutboundMessage.objects.exclude(esp_message_id="").values_list(
            "esp_message_id", "contact__email"
        )[:count]
    )
    while len(sent) < count:
        sent.append((str(uuid.uuid4()), f"unknown-{len(sent)}@example.com"))
    secret = base64.b64encode(settings.BENCH_WEBHOOK_SECRET.encode()).decode()
    client = Client(HTTP_AUTHORIZATION=f"Basic {secret}")
    acks = []
    # Time-boxed like every long step: on a busy machine 5,000 posts one by one took longer
    # than the rest of a run. The figures are then over the posts made (noted).
    posting_ends = time.time() + ctx.scale.budget
    for message_id, email in sent:
        if time.time() > posting_ends:
            break
        body = json.dumps(_delivery(message_id, email or "erased@example.com"))
        began = time.perf_counter()
        response = client.post(URL, body, "application/json")
        acks.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.content[:300]
    cut = f"posting cut off after {ctx.scale.budget:.0f} s: {len(acks)} of {count} posted"
    note = cut if len(acks) < count else ""
    ctx.add("webhook", "ack.p50", "ms", percentile(acks, 0.5), note=note)
    ctx.add("webhook", "ack.p99", "ms", percentile(acks, 0.99), target="< 100", note=note)
    ctx.add(
        "webhook",
        "accepted",
        "events/s",
        per_second(len(acks), sum(acks) / 1000),
        target=">= 2000",
        note=note,
        extra={"posted": len(acks)},
    )
    _batched(ctx, client, sent)
    pending = EspEvent.objects.filter(processed_at__isnull=True)
    before, began = pending.count(), time.perf_counter()
    deadline = time.time() + ctx.scale.budget
    while pending.exists() and time.time() < deadline:
        process_esp_events_task()
    left = pending.count()
    note = f"cut off: {left} still pending" if left else ""
    rate = per_second(before - left, time.perf_counter() - began)
    ctx.add("webhook", "inbox_processed", "events/s", rate, note=note)


def _batched(ctx: Context, client: Client, sent: list) -> None:
    """The same number of events again, SendGrid-shaped, BATCH per POST."""
    events = [_sendgrid_delivery(email or "erased@example.com") for _, email in sent]
    posted, inside = 0, 0.0
    posting_ends = time.time() + ctx.scale.budget
    for start in range(0, len(events), BATCH):
        if time.time() > posting_ends:
            break
        body = json.dumps(events[start : start + BATCH])
        began = time.perf_counter()
        response = client.post(BATCHED_URL, body, "application/json")
        inside += time.perf_counter() - began
        assert response.status_code == 200, response.content[:300]
        posted += len(events[start : start + BATCH])
    note = f"posting cut off: {posted} of {len(events)} posted" if posted < len(events) else ""
    ctx.add("webhook", "accepted_batched", "events/s", per_second(posted, inside),
            target=">= 2000", note=note, extra={"posted": posted, "per_post": BATCH})  # fmt: skip


def _sendgrid_delivery(email: str) -> dict:
    return {
        "email": email,
        "timestamp": int(time.time()),
        "event": "delivered",
        "category": [],
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{uuid.uuid4().hex}.filter0001",
        "response": "250 OK",
    }


def _delivery(message_id: str, email: str) -> dict:
    at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": email,
        "Tag": "",
        "DeliveredAt": at,
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }
