"""Finding 20: quiet hours can be turned off, and sign-ups carry the browser's time zone."""

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache

from crm.models import ConsentTopic, Contact
from crm.services import consent_text_publish
from sequences.models import OutboundMessage
from sequences.services import enrollment_create
from tests.factories import ContactFactory
from tests.sequences.conftest import build_sequence, email_step, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def wording(db):
    cache.clear()
    topic = ConsentTopic.objects.get(key="newsletter")
    return consent_text_publish(topic=topic, text="Yes, send me the newsletter.")


def quiet_hours_from(value: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    probe = "import json, config.settings as s; print(json.dumps(s.SEQUENCES_QUIET_HOURS))"
    return subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "DEBUG": "1", "SEQUENCES_QUIET_HOURS": value},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["off", "OFF", "none", ""])
def test_quiet_hours_off_is_an_empty_window(value):
    assert json.loads(quiet_hours_from(value).stdout) == "00:00-00:00"


def test_a_malformed_quiet_hours_value_stops_start_up():
    result = quiet_hours_from("9pm-8am")

    assert result.returncode != 0
    assert "SEQUENCES_QUIET_HOURS='9pm-8am': use HH:MM-HH:MM" in result.stderr


def test_with_quiet_hours_off_a_late_send_goes_out_at_once(settings, clock, consenting_contact):
    settings.SEQUENCES_QUIET_HOURS = "00:00-00:00"  # what SEQUENCES_QUIET_HOURS=off becomes
    consenting_contact.time_zone = "America/New_York"
    consenting_contact.save()
    clock.now = datetime.datetime(2026, 3, 11, 3, 0, tzinfo=datetime.UTC)  # 23:00 in New York
    sequence = build_sequence([email_step("hello")])
    enrollment_create(contact=consenting_contact, sequence=sequence)

    run(clock)

    assert OutboundMessage.objects.get().state == OutboundMessage.State.SENT


def sign_up(client, **extra):
    data = {"email": "nia@example.com", "first_name": "Nia", "topic": "newsletter", **extra}
    client.post("/subscribe/", data, secure=True)
    [message] = mail.outbox
    return re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", message.body).group(1)


def test_the_sign_up_and_confirm_pages_ask_the_browser_for_its_time_zone(client):
    form = client.get("/subscribe/", secure=True).content.decode()
    path = sign_up(client)
    confirm = client.get(path, secure=True).content.decode()

    for page in (form, confirm):
        assert 'name="time_zone"' in page
        assert "crm/timezone.js" in page


def test_a_time_zone_from_the_sign_up_form_reaches_the_contact(client):
    path = sign_up(client, time_zone="Europe/Berlin")

    client.post(path, secure=True)

    assert Contact.objects.get().time_zone == "Europe/Berlin"


def test_the_confirm_page_time_zone_is_used_too(client):
    path = sign_up(client)

    client.post(path, {"time_zone": "Asia/Tokyo"}, secure=True)

    assert Contact.objects.get().time_zone == "Asia/Tokyo"


@pytest.mark.parametrize("bogus", ["Mars/Olympus", "<script>", "UTC; DROP TABLE", "x" * 80])
def test_an_unknown_time_zone_is_ignored_not_an_error(client, bogus):
    path = sign_up(client, time_zone=bogus)

    client.post(path, {"time_zone": bogus}, secure=True)

    assert Contact.objects.get().time_zone == ""


def test_a_known_contacts_time_zone_is_never_overwritten(client):
    ContactFactory(email="nia@example.com", time_zone="America/Chicago")
    path = sign_up(client, time_zone="Europe/Berlin")

    client.post(path, {"time_zone": "Asia/Tokyo"}, secure=True)

    assert Contact.objects.get().time_zone == "America/Chicago"
