"""admin: the pages staff open all day, as a logged-in superuser through the test client.

Each page is loaded once to warm up, then timed (median of three) with its queries
counted. The filters and the sort are read from the rendered changelist, so the bench
follows the admin as it changes.
"""

from __future__ import annotations

import html
import json
import re
import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.bench.context import Context
from config.bench.people import admin_client
from config.bench.scenarios.segment import SHAPES
from crm.models import Contact

FILTER_BLOCK = re.compile(r'<details data-filter-title="([^"]+)"[^>]*>(.*?)</details>', re.S)
FILTER_LINK = re.compile(r'<li(?: class="[^"]*")?>\s*<a href="(\?[^"]+)"')
SORT_LINK = re.compile(r'<th[^>]*class="[^"]*sortable[^"]*"[^>]*>.*?<a href="(\?o=[^"]+)"', re.S)


def run(ctx: Context) -> None:
    client = admin_client()
    contacts = reverse("admin:crm_contact_changelist")
    sample = Contact.objects.order_by("-lead_score").first()
    pages = [("contacts", contacts, None)]
    if sample is not None:
        pages += [
            ("contacts.search_email", f"{contacts}?q={sample.email}", None),
            ("contacts.search_name", f"{contacts}?q={sample.last_name or 'smith'}", None),
        ]
    listing = client.get(contacts).content.decode()
    for title, block in FILTER_BLOCK.findall(listing):
        links = FILTER_LINK.findall(block)
        if links:
            slug = re.sub(r"\W+", "_", html.unescape(title).lower()).strip("_")
            pages.append((f"contacts.filter.{slug}", contacts + html.unescape(links[-1]), None))
    sort = SORT_LINK.search(listing)
    if sort:
        pages.append(("contacts.sorted", contacts + html.unescape(sort.group(1)), None))
    if sample is not None:
        pages.append(("contact_page", reverse("admin:crm_contact_change", args=[sample.pk]), None))
    pages += [
        ("activities", reverse("admin:crm_activity_changelist"), None),
        ("handoff_queue", reverse("admin:scoring_handoff_changelist"), None),
        ("segment_preview", reverse("admin:crm_segment_preview"),
         {"definition": SHAPES["nested_consent_no_deal"], "topic": "newsletter"}),
    ]  # fmt: skip
    for name, url, body in pages:
        _measure(ctx, client, name, url, body)


def _measure(
    ctx: Context, client, name: str, url: str, body: dict | None, scenario: str = "admin"
) -> None:
    def load():
        if body is None:
            return client.get(url)
        return client.post(url, json.dumps(body), "application/json")

    response = load()
    if response.status_code != 200:
        ctx.add(scenario, name, "ms", None, note=f"HTTP {response.status_code} for {url}")
        return
    times, queries = [], 0
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            load()
            times.append((time.perf_counter() - began) * 1000)
        queries = len(captured.captured_queries)
    ctx.add(
        scenario,
        name,
        "ms",
        statistics.median(times),
        target="< 300",
        extra={"queries": queries, "url": url},
    )
    ctx.add(scenario, f"{name}.queries", "queries", queries)
