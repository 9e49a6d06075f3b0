"""Each ESP's recorded events, posted through anymail's real webhook URLs (issue 5).

reliability.md §8: 16 (complaint), 17 (hard bounce per ESP and per recipient),
18 (soft bounces), 20 (authenticity), 21 (dedupe, replays days later), 22 (5xx on our
failure, 400 on bad auth, no processing in the request), 23 (sticky, any order).
"""

import base64
import datetime
import io
import json
from unittest import mock

import pytest
import requests
from anymail.exceptions import AnymailWebhookValidationFailure
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.utils import timezone

from crm.models import Activity, ConsentEntry, Suppression
from sequences.esp import inbox, sns
from sequences.esp.inbox import PROCESS_TASK
from sequences.models import EspEvent, OutboundMessage
from tests.factories import OutboundMessageFactory
from tests.sequences.esp.conftest import (
    SNS_CERT_URL,
    mailgun_body,
    payload,
    post_mailgun,
    post_postmark,
    post_sendgrid,
    post_ses,
    send_event,
    sign_sns,
    sns_notification,
    subs,
)

ESPS = ["postmark", "sendgrid", "mailgun", "amazon_ses"]
ESPS_WITH_UNSUBSCRIBE = ["postmark", "sendgrid", "mailgun"]  # anymail maps no SES unsubscribe
pytestmark = pytest.mark.django_db
# One webhook POST: the inbox INSERT, autocommitted, whatever the ESP and the event.
MAX_WEBHOOK_QUERIES = 1


def reasons(email: str) -> set[str]:
    return set(Suppression.objects.filter(email=email).values_list("reason", flat=True))


def kinds(contact) -> list[str]:
    return list(Activity.objects.filter(contact=contact).values_list("kind", flat=True))


@pytest.mark.parametrize("esp", ESPS)
def test_a_hard_bounce_suppresses_the_recipient(client, esp, ledger):
    response = send_event(client, esp, "hard_bounce", ledger)

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == {"hard_bounce"}
    assert "email_bounced" in kinds(ledger.contact)
    event = EspEvent.objects.get(recipient=ledger.contact.email)
    assert (event.kind, event.outcome, event.message) == ("hard_bounce", "processed", ledger)


@pytest.mark.parametrize("esp", ESPS)
def test_one_soft_bounce_does_not_suppress(client, esp, ledger):
    response = send_event(client, esp, "soft_bounce", ledger)

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == set()
    assert EspEvent.objects.get().kind in {"soft_bounce", "deferred"}


@pytest.mark.parametrize("esp", ["postmark", "sendgrid", "amazon_ses"])
def test_soft_bounces_on_three_messages_suppress_for_a_while(client, esp, ledger, settings):
    settings.DELIVERABILITY_SOFT_BOUNCE_LIMIT = 3
    others = [_another_message(ledger, n) for n in (1, 2)]

    for number, message in enumerate([ledger, ledger, *others]):  # the repeat counts once
        _soft_bounce(client, esp, message, number)
        if number == 2:
            assert reasons(ledger.contact.email) == set()

    suppression = Suppression.objects.get(email=ledger.contact.email)
    assert suppression.reason == "soft_bounce" and suppression.expires_at is not None


def test_mailgun_temporary_failures_are_deferrals_that_never_count(client, ledger, settings):
    settings.DELIVERABILITY_SOFT_BOUNCE_LIMIT = 1
    send_event(client, "mailgun", "soft_bounce", ledger)

    assert EspEvent.objects.get().kind == "deferred"
    assert reasons(ledger.contact.email) == set()


@pytest.mark.parametrize("esp", ESPS)
def test_a_complaint_suppresses_for_good_and_withdraws_all_consent(client, esp, ledger):
    response = send_event(client, esp, "complaint", ledger)

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == {"complaint"}
    latest = {
        entry.topic_id: entry.is_granted
        for entry in ConsentEntry.objects.filter(contact=ledger.contact).order_by("occurred_at")
    }
    assert latest and not any(latest.values())
    assert "email_complained" in kinds(ledger.contact)


@pytest.mark.parametrize("esp", ESPS_WITH_UNSUBSCRIBE)
def test_an_esp_unsubscribe_withdraws_consent_and_suppresses(client, esp, ledger):
    response = send_event(client, esp, "unsubscribe", ledger)

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == {"unsubscribed"}
    assert not ConsentEntry.objects.filter(contact=ledger.contact).latest("occurred_at").is_granted
    assert "unsubscribed" in kinds(ledger.contact)


@pytest.mark.parametrize("esp", ESPS)
@pytest.mark.parametrize(
    ("event", "kind"),
    [("delivered", "email_delivered"), ("open", "email_opened"), ("click", "email_clicked")],
)
def test_engagement_becomes_an_activity_on_the_contact_and_message(
    client, esp, event, kind, ledger
):
    response = send_event(client, esp, event, ledger)

    assert response.status_code == 200
    activity = Activity.objects.get(contact=ledger.contact, kind=kind)
    assert activity.source == f"esp:{esp}"
    assert activity.properties["message_uuid"] == str(ledger.uuid)
    assert EspEvent.objects.get().outcome == "processed"
    if kind == "email_opened":
        assert activity.properties["is_machine_open"] is False


def test_a_machine_open_is_marked_and_does_not_count_as_engagement(client, ledger):
    ledger.contact.last_engaged_at = None
    ledger.contact.save()
    post_sendgrid(client, [payload("sendgrid_events.json", **subs(ledger))["machine_open"]])

    activity = Activity.objects.get(kind="email_opened")
    assert activity.properties["is_machine_open"] is True
    ledger.contact.refresh_from_db()
    assert ledger.contact.last_engaged_at is None


def test_an_apple_proxy_open_at_postmark_is_a_machine_open(client, ledger):
    send_event(client, "postmark", "open", ledger, user_agent="Mozilla/5.0")

    assert Activity.objects.get(kind="email_opened").properties["is_machine_open"] is True


@pytest.mark.parametrize("esp", ESPS)
def test_the_same_event_delivered_three_times_acts_once(client, esp, ledger):
    fixed = {"event_id": "evt-1", "token": "mailgun-token-1", "sns_id": "sns-msg-1"}

    statuses = [send_event(client, esp, "click", ledger, **fixed).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert EspEvent.objects.count() == 1
    assert Activity.objects.filter(kind="email_clicked").count() == 1


@pytest.mark.parametrize("esp", ESPS)
def test_delivered_after_bounced_keeps_the_suppression(client, esp, ledger):
    send_event(client, esp, "hard_bounce", ledger)
    send_event(client, esp, "delivered", ledger)
    send_event(client, esp, "open", ledger)

    assert reasons(ledger.contact.email) == {"hard_bounce"}


def test_a_multi_recipient_ses_bounce_suppresses_only_the_bounced_address(client, ledger):
    values = subs(ledger, other_email="grace@example.com")
    event = payload("amazon_ses_events.json", **values)["hard_bounce"]

    post_ses(client, sns_notification(event))

    assert reasons(ledger.contact.email) == {"hard_bounce"}
    assert reasons("grace@example.com") == set()


def test_events_for_unknown_messages_are_kept_and_reported(client, db):
    # An unsaved message: its ids match no ledger row.
    stranger = OutboundMessageFactory.build(esp_message_id="not-ours")
    stranger.contact.email = "nobody@example.com"
    send_event(client, "postmark", "hard_bounce", stranger)

    event = EspEvent.objects.get()
    assert event.outcome == "unknown_message"
    assert reasons("nobody@example.com") == {"hard_bounce"}


def test_a_rejected_message_fails_its_ledger_row(client, ledger):
    dropped = dict(payload("sendgrid_events.json", **subs(ledger))["hard_bounce"])
    dropped.update(event="dropped", reason="Invalid", type="invalid")

    post_sendgrid(client, [dropped])

    ledger.refresh_from_db()
    assert ledger.state == OutboundMessage.State.FAILED
    assert ledger.reason.startswith("ESP rejected")


def test_our_own_failure_answers_500_so_the_esp_retries(client, ledger):
    client.raise_request_exception = False
    with mock.patch("sequences.esp.inbox._rows_write", side_effect=DatabaseError("down")):
        response = send_event(client, "postmark", "hard_bounce", ledger)

    assert response.status_code == 500
    assert EspEvent.objects.count() == 0


def test_a_wrong_secret_is_refused_with_400(client, ledger):
    body = payload("postmark_hard_bounce.json", **subs(ledger))
    response = client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic d3Jvbmc6d3Jvbmc=",  # wrong:wrong
    )

    assert response.status_code == 400
    assert EspEvent.objects.count() == 0


def test_a_forged_mailgun_signature_is_refused(client, ledger):
    event = payload("mailgun_events.json", **subs(ledger))["hard_bounce"]
    body = mailgun_body(event)
    body["signature"]["signature"] = "0" * 64

    assert post_mailgun(client, body).status_code == 400
    assert reasons(ledger.contact.email) == set()


def _another_message(ledger, number: int):
    return OutboundMessageFactory(
        contact=ledger.contact,
        enrollment=ledger.enrollment,
        esp_message_id=f"other-message-{number}",
    )


def _soft_bounce(client, esp: str, message, number: int):
    extra = {"event_id": f"soft-{number}", "sns_id": f"sns-soft-{number}"}
    if esp == "postmark":
        body = payload("postmark_soft_bounce.json", **subs(message))
        body["ID"] = 4096000 + number
        return post_postmark(client, body)
    return send_event(client, esp, "soft_bounce", message, **extra)


# --- Authenticity (reliability.md §8, 20) ----------------------------------------------


def post_postmark_with_auth(client, ledger, authorization: str | None):
    body = payload("postmark_hard_bounce.json", **subs(ledger))
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def test_a_missing_secret_is_refused_with_400(client, ledger):
    assert post_postmark_with_auth(client, ledger, None).status_code == 400
    assert EspEvent.objects.count() == 0


def test_rotated_secrets_accept_old_and_new_until_the_old_is_removed(client, ledger, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ["hook:old", "hook:new"]}
    during = [post_postmark_with_auth(client, ledger, basic(s)) for s in ("hook:old", "hook:new")]

    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ["hook:new"]}
    removed = post_postmark_with_auth(client, ledger, basic("hook:old"))
    kept = post_postmark_with_auth(client, ledger, basic("hook:new"))

    assert [r.status_code for r in during] == [200, 200]
    assert (removed.status_code, kept.status_code) == (400, 200)


def test_a_signed_mailgun_event_with_a_wrong_signing_key_is_refused(client, ledger, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": "key-rotated"}
    event = payload("mailgun_events.json", **subs(ledger))["hard_bounce"]

    assert post_mailgun(client, mailgun_body(event)).status_code == 400
    assert EspEvent.objects.count() == 0


SES_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


def test_an_ses_event_from_an_unexpected_topic_is_refused_before_it_is_stored(
    client, ledger, settings
):
    settings.SES_SNS_TOPIC_ARNS = [SES_TOPIC]
    event = payload("amazon_ses_events.json", **subs(ledger))["hard_bounce"]
    forged = {**sns_notification(event), "TopicArn": "arn:aws:sns:us-east-1:666:attacker"}

    response = post_ses(client, forged)  # valid basic auth, wrong topic

    assert response.status_code == 400
    assert EspEvent.objects.count() == 0
    assert reasons(ledger.contact.email) == set()


def test_an_ses_event_from_the_expected_topic_is_stored(client, ledger, settings):
    settings.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:other", SES_TOPIC]

    response = send_event(client, "amazon_ses", "hard_bounce", ledger)

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == {"hard_bounce"}


# --- SNS signatures (AWS: "Verifying the signatures of Amazon SNS messages") ------------


def ses_bounce(ledger, **changes) -> dict:
    event = payload("amazon_ses_events.json", **subs(ledger))["hard_bounce"]
    return {**sns_notification(event, version=changes.pop("version", "1")), **changes}


def assert_refused(response, ledger):
    assert response.status_code == 400
    assert EspEvent.objects.count() == 0
    assert reasons(ledger.contact.email) == set()


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_ses_event_signed_by_sns_is_stored(client, ledger, sns_cert_fetches, version):
    response = post_ses(client, ses_bounce(ledger, version=version))

    assert response.status_code == 200
    assert reasons(ledger.contact.email) == {"hard_bounce"}
    assert sns_cert_fetches.urls == [SNS_CERT_URL]


def test_the_certificate_is_fetched_once_per_url(client, ledger, sns_cert_fetches):
    for _ in range(2):
        assert post_ses(client, ses_bounce(ledger)).status_code == 200

    assert sns_cert_fetches.urls == [SNS_CERT_URL]


def test_a_tampered_ses_message_is_refused(client, ledger):
    signed = ses_bounce(ledger)
    tampered = {**signed, "Message": signed["Message"].replace("Permanent", "Transient")}
    assert tampered["Message"] != signed["Message"]

    assert_refused(post_ses(client, tampered), ledger)


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.attacker.example.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@attacker.example.com/cert.pem",
    ],
)
def test_a_certificate_off_amazon_sns_is_refused_unfetched(client, ledger, sns_cert_fetches, url):
    assert_refused(post_ses(client, ses_bounce(ledger, SigningCertURL=url)), ledger)
    assert sns_cert_fetches.urls == []


def test_a_certificate_that_cannot_be_fetched_is_refused(client, ledger, sns_cert_fetches):
    sns_cert_fetches.error = requests.ConnectionError("timed out")

    assert_refused(post_ses(client, ses_bounce(ledger)), ledger)


def test_an_unknown_signature_version_is_refused(client, ledger, sns_cert_fetches):
    assert_refused(post_ses(client, ses_bounce(ledger, SignatureVersion="3")), ledger)
    assert sns_cert_fetches.urls == []


def test_unsigned_ses_events_pass_only_with_verification_off(client, ledger, settings):
    unsigned = ses_bounce(ledger, Signature="")
    assert_refused(post_ses(client, unsigned), ledger)

    settings.SES_SNS_VERIFY_SIGNATURES = False  # local testing without AWS

    assert post_ses(client, unsigned).status_code == 200


def test_a_subscription_confirmation_signs_its_subscribe_url_and_token():
    confirmation = sign_sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sns-confirm-1",
            "Token": "token-1",
            "TopicArn": SES_TOPIC,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": "2026-03-10T10:05:01.000Z",
            "SigningCertURL": SNS_CERT_URL,
        }
    )
    sns.verify_signature(confirmation)

    with pytest.raises(AnymailWebhookValidationFailure):
        sns.verify_signature({**confirmation, "Token": "token-2"})


# --- Replays (reliability.md §8, 21) ---------------------------------------------------


@pytest.mark.parametrize("esp", ESPS)
def test_a_replay_six_days_later_is_still_deduped(client, esp, ledger):
    fixed = {"event_id": "evt-replay", "token": "mailgun-token-replay", "sns_id": "sns-replay"}
    send_event(client, esp, "click", ledger, **fixed)

    later = timezone.now() + datetime.timedelta(days=6)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = send_event(client, esp, "click", ledger, **fixed)

    assert response.status_code == 200
    assert EspEvent.objects.count() == 1
    assert Activity.objects.filter(kind="email_clicked").count() == 1


# --- Acknowledge fast (reliability.md §8, 22) ------------------------------------------


@pytest.mark.parametrize("esp", ESPS)
def test_the_webhook_only_stores_and_enqueues(client, esp, ledger, django_assert_max_num_queries):
    enqueue = mock.patch("django_q.tasks.async_task")
    with enqueue as async_task, django_assert_max_num_queries(MAX_WEBHOOK_QUERIES):
        send_event(client, esp, "click", ledger)

    async_task.assert_called_once_with(PROCESS_TASK)
    assert EspEvent.objects.get().outcome == EspEvent.Outcome.PENDING
    assert not Activity.objects.filter(kind="email_clicked").exists()


def test_pruning_keeps_recent_and_pending_events_and_refuses_under_7_days(client, ledger):
    send_event(client, "postmark", "click", ledger)
    send_event(client, "postmark", "delivered", ledger)
    EspEvent.objects.update(received_at=timezone.now() - datetime.timedelta(days=31))
    send_event(client, "postmark", "open", ledger)  # processes anything pending
    EspEvent.objects.filter(event_type="clicked").update(outcome=EspEvent.Outcome.PENDING)

    call_command("prune_esp_inbox", stdout=io.StringIO())

    assert set(EspEvent.objects.values_list("event_type", flat=True)) == {"clicked", "opened"}
    with pytest.raises(CommandError):
        call_command("prune_esp_inbox", days=6)


def sendgrid_batch(ledger, count: int) -> list[dict]:
    return [payload("sendgrid_events.json", **subs(ledger))["click"] for _ in range(count)]


def test_a_batched_post_is_stored_with_one_insert_however_many_events(client, ledger):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    inserts = []
    for count in (2, 50):
        with mock.patch("django_q.tasks.async_task"), CaptureQueriesContext(connection) as q:
            response = post_sendgrid(client, sendgrid_batch(ledger, count))
        assert response.status_code == 200
        inserts.append([s for s in q.captured_queries if s["sql"].startswith("INSERT")])
    assert [len(statements) for statements in inserts] == [1, 1]
    assert EspEvent.objects.count() == 52


def test_a_failing_batch_stores_none_of_its_events(client, ledger):
    client.raise_request_exception = False
    batch = sendgrid_batch(ledger, 3)
    with mock.patch(
        "sequences.webhooks.esp_event_store",
        side_effect=[None, None, DatabaseError("down")],
    ):
        response = post_sendgrid(client, batch)
    assert response.status_code == 500
    assert EspEvent.objects.count() == 0


def test_one_processing_task_is_queued_until_it_starts(client, ledger, monkeypatch):
    from sequences.esp.tasks import process_esp_events_task

    # Here the worker shares the web process's memory cache, as every process shares Redis.
    monkeypatch.setattr(inbox, "_cache_is_shared", lambda: True)
    with mock.patch("django_q.tasks.async_task") as async_task:
        for _ in range(3):
            send_event(client, "postmark", "click", ledger)
        assert async_task.call_count == 1, "the queued task will process all three"
        process_esp_events_task()  # it starts: the next stored event queues another
        send_event(client, "postmark", "open", ledger)
    assert async_task.call_count == 2
    assert EspEvent.objects.filter(outcome=EspEvent.Outcome.PENDING).count() == 1


def test_a_webhook_post_skips_the_browser_middleware_but_keeps_the_security_headers(client, ledger):
    response = send_event(client, "postmark", "click", ledger)

    assert response.status_code == 200
    # Set by middleware below EspWebhookMiddleware, which a webhook never needs:
    for header in ("X-Frame-Options", "Content-Security-Policy", "Vary"):
        assert header not in response.headers, header
    assert not response.cookies
    # SecurityMiddleware runs first, as for every request.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert EspEvent.objects.count() == 1


def test_other_anymail_paths_take_the_usual_stack(client):
    response = client.post("/anymail/nowhere/tracking/", "{}", content_type="application/json")
    assert response.status_code == 404
