"""Fresh, sendable people for the scenarios that follow one message end to end, and the
credentials the scenarios use (an API key, the admin user)."""

from __future__ import annotations

import datetime
import uuid

from django.contrib.auth import get_user_model
from django.test import Client

from config.bench.data import sendable_contacts
from config.bench.setup import ADMIN_USERNAME
from crm.models import Contact
from crm.services.api_keys import api_key_create


def midday_zone(now: datetime.datetime | None = None) -> str:
    """An IANA zone where it is about noon now, so quiet hours never defer a bench send."""
    now = now or datetime.datetime.now(datetime.UTC)
    offset = 12 - now.hour
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def fresh_contacts(count: int, tag: str) -> list[Contact]:
    """New contacts consenting to the newsletter, at noon in their own time zone.

    Written raw like the generated data set (through data.sendable_contacts): creating
    thousands through the services took minutes per scenario round on a busy machine,
    and the consent service's own path is measured elsewhere (ingest, webhooks).
    """
    return sendable_contacts(count, tag=tag, time_zone=midday_zone())


def api_client() -> Client:
    """A test client that sends a fresh server key, with a rate limit no bench reaches."""
    created = api_key_create(
        name=f"bench {uuid.uuid4().hex[:6]}", kind="server", rate_limit_per_minute=10_000_000
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {created.key}")


def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN_USERNAME))
    return client
