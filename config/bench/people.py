"""Fresh, sendable people for the scenarios that follow one message end to end, and the
credentials the scenarios use (an API key, the admin user)."""

from __future__ import annotations

import datetime
import uuid

from django.contrib.auth import get_user_model
from django.test import Client

from config.bench.setup import ADMIN_USERNAME
from crm.models import ConsentTopic, Contact
from crm.services import consent_grant, contact_upsert
from crm.services.api_keys import api_key_create


def midday_zone(now: datetime.datetime | None = None) -> str:
    """An IANA zone where it is about noon now, so quiet hours never defer a bench send."""
    now = now or datetime.datetime.now(datetime.UTC)
    offset = 12 - now.hour
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def fresh_contacts(count: int, tag: str) -> list[Contact]:
    """New contacts through the services, each consenting to the newsletter."""
    topic = ConsentTopic.objects.get(key="newsletter")
    zone, run = midday_zone(), uuid.uuid4().hex[:6]
    people = []
    for i in range(count):
        result = contact_upsert(
            email=f"bench-{tag}-{run}-{i}@example.com", first_name="Bench", time_zone=zone
        )
        consent_grant(contact=result.contact, topic=topic, method="form", source="bench")
        people.append(result.contact)
    return people


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
