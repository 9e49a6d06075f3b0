"""Logs and ESP metadata never carry an email address or a secret token.

A real send (engine → gate → ledger → anymail's test backend) and a real webhook (the
ESP's POST with basic auth) run with every logger at DEBUG; then every log record and
every piece of metadata the ESP receives is searched for the addresses and tokens
involved. Opaque ids only (STYLE.md §8).
"""

import base64
import json
import logging

import pytest
from django.core import mail

from crm.links import preferences_token
from sequences.links import unsubscribe_token
from sequences.models import OutboundMessage
from sequences.services import enrollment_create
from tests.sequences.conftest import build_sequence, email_step, run

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "hook:logcapture-s3cret"


def everything_logged(caplog) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        lines.append(repr({k: v for k, v in vars(record).items() if k not in {"args", "msg"}}))
    return "\n".join(lines)


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret and secret.lower() in text.lower()]


def test_a_send_and_its_webhook_log_no_address_and_no_token(
    client, caplog, settings, clock, consenting_contact
):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    caplog.set_level(logging.DEBUG)
    sequence = build_sequence([email_step("hello")])
    owner_email = sequence.owner.email

    enrollment_create(contact=consenting_contact, sequence=sequence)
    run(clock)
    [message] = mail.outbox
    row = OutboundMessage.objects.get()
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    event = {
        "RecordType": "Delivery",
        "MessageID": row.esp_message_id,
        "Recipient": consenting_contact.email,
        "DeliveredAt": "2026-03-10T10:05:00Z",
        "Metadata": message.metadata,
        "Details": "Test delivery",
        "Tag": "",
        "ServerID": 1,
    }
    response = client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
        secure=True,
    )

    assert response.status_code == 200
    assert row.state == OutboundMessage.State.SENT
    secrets = [
        consenting_contact.email,
        consenting_contact.email.split("@")[0] + "@",
        owner_email,
        unsubscribe_token(consenting_contact, sequence.topic),
        preferences_token(consenting_contact),
        WEBHOOK_SECRET,
        WEBHOOK_SECRET.split(":")[1],
        settings.SECRET_KEY,
    ]
    esp_metadata = json.dumps(
        {
            "metadata": message.metadata,
            "tags": getattr(message, "tags", []),
            "merge_metadata": getattr(message, "merge_metadata", {}),
            "track": [
                getattr(message, "track_clicks", None),
                getattr(message, "track_opens", None),
            ],
        },
        default=str,
    )
    assert secrets_in(esp_metadata, secrets) == []
    assert secrets_in(everything_logged(caplog), secrets) == []
    assert caplog.records, "nothing was logged: the capture is not listening"
