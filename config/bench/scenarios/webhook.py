"""webhook: delivery events through anymail's real tracking views (basic auth, parsing,
our tracking receiver, the inbox), then the inbox processed by its task.

ESPs post differently: Postmark and Mailgun send one event per POST, SendGrid batches
many events into one POST (Amazon SES via SNS: one per POST). So two rates are measured:
- `accepted`: Postmark's shape, one event per POST (ack p50/p99 are of these POSTs);
- `accepted_batched`: SendGrid's shape, BATCH events per POST: events / time in POSTs;
- `accepted_concurrent`: one-event POSTs from POSTERS threads at once, as an ESP posts
  (each request waits on its own database round trip, another runs meanwhile): events /
  wall time. One process, so its Python still takes turns under the GIL; gunicorn's
  worker processes do not.
inbox: events processed per second by `process_esp_events_task`, until none is pending.

The POSTs go to Django's WSGI handler as a WSGI server (gunicorn) hands them over: an
environ in, the response read and closed (which ends the request: request_finished), so
the figures are the server's work. Django's test Client adds its own per-request work that
no server does (template and exception signal hooks, a cookie jar, response decoration):
about a third of a one-event POST. The one-event rate is a fraction of a millisecond per
POST, so a few hundred POSTs were too few to measure it against a busy machine: after a
warm-up (imports, the first connection, caches), ROUNDS rounds of POSTS_PER_ROUND or more
are timed and `accepted` is the median round's rate (every round's rate is in `extra`).
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections

from config.bench.context import Context, percentile
from config.bench.scenarios.common import per_second
from sequences.esp.tasks import process_esp_events_task
from sequences.models import EspEvent, OutboundMessage

URL = "/anymail/postmark/tracking/"
BATCHED_URL = "/anymail/sendgrid/tracking/"
#: Events per SendGrid POST: SendGrid batches by size and time; 100 is a modest batch.
BATCH = 100
#: Untimed one-event POSTs first: the first ones import, connect and fill caches.
WARMUP = 200
#: Timed rounds of one-event POSTs; `accepted` is the median round's rate.
ROUNDS = 5
POSTS_PER_ROUND = 1_000
#: SendGrid-shaped events posted at least (20 POSTs of BATCH).
BATCHED_EVENTS = 2_000
#: Concurrent one-event posters (threads) for `accepted_concurrent`, and their POSTs.
POSTERS = 2
CONCURRENT_POSTS = 2_000


class WsgiPoster:
    """POST to Django's WSGI handler the way a WSGI server does; time each request."""

    def __init__(self, authorization: str):
        self.handler = WSGIHandler()
        self.authorization = authorization

    def post(self, path: str, body: str) -> tuple[int, float, bytes]:
        """(status, milliseconds from the environ to the closed response, content)."""
        data = body.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_AUTHORIZATION": self.authorization,
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status = []
        began = time.perf_counter()
        response = self.handler(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            content = b"".join(response)
        finally:
            response.close()
        elapsed = (time.perf_counter() - began) * 1000
        return int(status[0].split()[0]), elapsed, content


def run(ctx: Context) -> None:
    warmup = WARMUP
    posts_per_round = max(POSTS_PER_ROUND, ctx.scale.webhook_events // ROUNDS)
    batched_events = max(BATCHED_EVENTS, ctx.scale.webhook_events)
    if ctx.scale.name == "tiny":  # the test suite's run of every path: no figure to trust
        warmup, posts_per_round = 5, max(1, ctx.scale.webhook_events // ROUNDS)
        batched_events = ctx.scale.webhook_events
    count = warmup + ROUNDS * posts_per_round
    sent = list(
        OutboundMessage.objects.exclude(esp_message_id="").values_list(
            "esp_message_id", "contact__email"
        )[:count]
    )
    while len(sent) < count:
        sent.append((str(uuid.uuid4()), f"unknown-{len(sent)}@example.com"))
    secret = base64.b64encode(settings.BENCH_WEBHOOK_SECRET.encode()).decode()
    poster = WsgiPoster(f"Basic {secret}")
    bodies = [json.dumps(_delivery(message_id, email or "erased@example.com"))
              for message_id, email in sent]  # fmt: skip
    for body in bodies[:warmup]:
        _check(poster.post(URL, body))
    acks: list[float] = []
    rates: list[float] = []
    cpu = 0.0
    # Time-boxed like every long step: on a busy machine thousands of posts one by one
    # can take longer than the rest of a run. The figures are then over the rounds made.
    posting_ends = time.time() + ctx.scale.budget
    for start in range(warmup, count, posts_per_round):
        if time.time() > posting_ends:
            break
        cpu_began = time.process_time()
        times = [_check(poster.post(URL, body)) for body in bodies[start : start + posts_per_round]]
        cpu += time.process_time() - cpu_began
        acks += times
        rates.append(len(times) / (sum(times) / 1000))
    note = (
        f"posting cut off after {ctx.scale.budget:.0f} s: {len(rates)} of {ROUNDS} rounds"
        if len(rates) < ROUNDS
        else ""
    )
    ctx.add("webhook", "ack.p50", "ms", percentile(acks, 0.5), note=note)
    ctx.add("webhook", "ack.p99", "ms", percentile(acks, 0.99), target="< 100", note=note)
    ctx.add(
        "webhook",
        "accepted",
        "events/s",
        statistics.median(rates) if rates else None,
        target=">= 2000",
        note=note,
        extra={
            "posted": len(acks),
            "warmup": warmup,
            "rounds": [round(rate) for rate in rates],
            "posts_per_round": posts_per_round,
            "driver": "WSGIHandler",
        },
    )
    cpu_ms = cpu * 1000 / len(acks) if acks else None
    ctx.add("webhook", "cpu_per_post", "CPU ms", cpu_ms, note=note)
    _batched(ctx, poster, [email for _, email in sent[:batched_events]])
    concurrent = CONCURRENT_POSTS if ctx.scale.name != "tiny" else ctx.scale.webhook_events
    fresh = [json.dumps(_delivery(str(uuid.uuid4()), f"concurrent-{n}@example.com"))
             for n in range(concurrent)]  # fmt: skip
    _concurrent(ctx, poster, fresh, posters=1 if ctx.scale.name == "tiny" else POSTERS)
    pending = EspEvent.objects.filter(processed_at__isnull=True)
    before, began = pending.count(), time.perf_counter()
    deadline = time.time() + ctx.scale.budget
    while pending.exists() and time.time() < deadline:
        process_esp_events_task()
    left = pending.count()
    note = f"cut off: {left} still pending" if left else ""
    rate = per_second(before - left, time.perf_counter() - began)
    ctx.add("webhook", "inbox_processed", "events/s", rate, note=note)


def _check(result: tuple[int, float, bytes]) -> float:
    status, elapsed, content = result
    assert status == 200, content[:300]
    return elapsed


def _batched(ctx: Context, poster: WsgiPoster, emails: list[str]) -> None:
    """SendGrid-shaped delivery events, BATCH per POST, after one untimed POST."""
    _check(poster.post(BATCHED_URL, json.dumps([_sendgrid_delivery("warm@example.com")])))
    events = [_sendgrid_delivery(email or "erased@example.com") for email in emails]
    posted, inside = 0, 0.0
    posting_ends = time.time() + ctx.scale.budget
    for start in range(0, len(events), BATCH):
        if time.time() > posting_ends:
            break
        inside += _check(poster.post(BATCHED_URL, json.dumps(events[start : start + BATCH])))
        posted += len(events[start : start + BATCH])
    note = f"posting cut off: {posted} of {len(events)} posted" if posted < len(events) else ""
    ctx.add("webhook", "accepted_batched", "events/s", per_second(posted, inside / 1000),
            target=">= 2000", note=note, extra={"posted": posted, "per_post": BATCH})  # fmt: skip


def _concurrent(ctx: Context, poster: WsgiPoster, bodies: list[str], posters: int) -> None:
    """New one-event POSTs from `posters` threads at once: events / wall time. tiny runs
    one poster in this thread (a test's transaction is not visible to another thread's
    connection)."""
    shares = [bodies[index::posters] for index in range(posters)]

    def post_share(share: list[str]) -> None:
        try:
            for body in share:
                _check(poster.post(URL, body))
        finally:
            if posters > 1:
                connections.close_all()  # this thread's connections

    began = time.perf_counter()
    if posters == 1:
        post_share(shares[0])
    else:
        with ThreadPoolExecutor(max_workers=posters) as pool:
            list(pool.map(post_share, shares))
    elapsed = time.perf_counter() - began
    ctx.add("webhook", "accepted_concurrent", "events/s", per_second(len(bodies), elapsed),
            target=">= 2000", extra={"posted": len(bodies), "posters": posters})  # fmt: skip


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
