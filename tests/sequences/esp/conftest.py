"""ESP webhook helpers: recorded payload shapes posted through anymail's real URLs."""

import base64
import datetime
import functools
import hashlib
import hmac
import json
import uuid
from pathlib import Path

import pytest
import requests
from anymail.webhooks import amazon_ses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.utils import timezone

from crm.models import ConsentTopic
from sequences.esp import sns
from tests.factories import ConsentEntryFactory, ContactFactory, OutboundMessageFactory

GRANTED_AT = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.UTC)
PAYLOADS = Path(__file__).parent / "payloads"
WEBHOOK_SECRET = "hook:s3cret"
MAILGUN_SIGNING_KEY = "key-mailgun-signing"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()}
SNS_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
    }


@pytest.fixture(autouse=True)
def ses_without_boto3(monkeypatch):
    """anymail's SES view wants boto3 only to confirm subscriptions and read S3 (inbound);
    tracking notifications need neither, and boto3 is not installed here."""
    monkeypatch.setattr(amazon_ses, "_get_anymail_boto3_params", lambda **kwargs: ({}, {}))


@functools.cache
def sns_test_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A private key and its self-signed PEM certificate, standing in for Amazon SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


class CertFetches:
    """Stands in for requests.get on the SNS certificate URL; records what was fetched."""

    def __init__(self):
        self.urls = []
        self.error = None

    def __call__(self, url, timeout):
        self.urls.append(url)
        if self.error:
            raise self.error
        response = requests.Response()
        response.status_code = 200
        response._content = sns_test_key()[1]
        return response


@pytest.fixture(autouse=True)
def sns_cert_fetches(monkeypatch):
    """Every SES post runs the real signature check against our test certificate."""
    sns._fetch_key.cache_clear()  # a key cached by another test would hide a fetch
    fetches = CertFetches()
    monkeypatch.setattr(sns.requests, "get", fetches)
    yield fetches
    sns._fetch_key.cache_clear()


def sign_sns(message: dict, version: str = "1") -> dict:
    """The message with SignatureVersion and a Signature made with our test key."""
    signed = {**message, "SignatureVersion": version}
    algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}[version]
    text = sns.canonical_string(signed)
    signature = sns_test_key()[0].sign(text, padding.PKCS1v15(), algorithm())
    return {**signed, "Signature": base64.b64encode(signature).decode()}


@pytest.fixture
def contact(db):
    person = ContactFactory(email="ada@example.com")
    for topic in ConsentTopic.objects.all():
        # Granted before the recorded events happened (their timestamps are March 2026).
        ConsentEntryFactory(contact=person, topic=topic, occurred_at=GRANTED_AT)
    return person


@pytest.fixture
def ledger(contact):
    """A sent marketing message to the contact, with the ESP's message id stored."""
    return OutboundMessageFactory(
        contact=contact,
        enrollment__contact=contact,
        esp_message_id="883953f4-6105-42a2-a16a-77a8eac79483",
        sent_at=timezone.now(),
    )


def payload(name: str, **values) -> object:
    """A recorded payload with {{placeholders}} filled in."""
    text = (PAYLOADS / name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)


def subs(message, **extra) -> dict:
    values = {
        "email": message.contact.email,
        "uuid": message.uuid,
        "message_id": message.esp_message_id or f"<{uuid.uuid4()}@mail.example.com>",
        "event_id": uuid.uuid4().hex,
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        "other_email": "grace@example.com",
    }
    return {**values, **extra}


def post_json(client, url: str, body, **headers):
    return client.post(
        url, data=json.dumps(body), content_type="application/json", **AUTH, **headers
    )


def post_postmark(client, body):
    return post_json(client, "/anymail/postmark/tracking/", body)


def post_sendgrid(client, events: list):
    return post_json(client, "/anymail/sendgrid/tracking/", events)


def mailgun_body(event_data: dict, token: str | None = None) -> dict:
    token = token or uuid.uuid4().hex
    timestamp = "1773137100"
    signature = hmac.new(
        MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def post_mailgun(client, body: dict):
    return post_json(client, "/anymail/mailgun/tracking/", body)


def sns_notification(ses_event: dict, message_id: str | None = None, version="1") -> dict:
    unsigned = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-03-10T10:05:01.000Z",
        "SigningCertURL": SNS_CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    return sign_sns(unsigned, version)


def post_ses(client, notification: dict):
    return post_json(
        client,
        "/anymail/amazon_ses/tracking/",
        notification,
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=notification["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=notification["MessageId"],
    )


POSTMARK_FILES = {
    "hard_bounce": "postmark_hard_bounce.json",
    "soft_bounce": "postmark_soft_bounce.json",
    "complaint": "postmark_complaint.json",
    "unsubscribe": "postmark_unsubscribe.json",
    "delivered": "postmark_delivered.json",
    "open": "postmark_open.json",
    "click": "postmark_click.json",
}


def send_event(client, esp: str, kind: str, message, **extra):
    """Post one recorded event of this kind for the ledger message through anymail's URL."""
    values = subs(message, **extra)
    if esp == "postmark":
        return post_postmark(client, payload(POSTMARK_FILES[kind], **values))
    if esp == "sendgrid":
        return post_sendgrid(client, [payload("sendgrid_events.json", **values)[kind]])
    if esp == "mailgun":
        event = payload("mailgun_events.json", **values)[kind]
        return post_mailgun(client, mailgun_body(event, token=extra.get("token")))
    if esp == "amazon_ses":
        event = payload("amazon_ses_events.json", **values)[kind]
        return post_ses(client, sns_notification(event, message_id=extra.get("sns_id")))
    raise ValueError(esp)
