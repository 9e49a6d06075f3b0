"""RFC 8058 one-click unsubscribe and the unsubscribe page (issue 5)."""

import datetime
import time
from unittest import mock

import pytest
from django.core import mail, signing
from django.utils import timezone

from crm.links import preferences_token, unsubscribe_url
from crm.models import Activity, ConsentEntry, ConsentTopic, Suppression
from crm.selectors import consent_current
from crm.services import activity_record
from sequences.models import OutboundMessage
from tests.factories import ContactFactory
from tests.sequences.conftest import build_sequence, email_step, run, sent_to, step

pytestmark = pytest.mark.django_db

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def path_of(url: str) -> str:
    return url.removeprefix("https://nextstep.test").removeprefix("http://127.0.0.1:8000")


def newsletter_url(contact) -> str:
    return path_of(unsubscribe_url(contact, ConsentTopic.objects.get(key="newsletter")))


def ledger_state() -> tuple:
    return (
        list(ConsentEntry.objects.values_list("pk", "is_granted")),
        list(Suppression.objects.values_list("pk", flat=True)),
        list(Activity.objects.values_list("pk", flat=True)),
    )


@pytest.mark.parametrize("multipart", [False, True], ids=["form-encoded", "multipart"])
def test_one_click_post_withdraws_the_topic_without_cookie_csrf_or_redirect(
    strict_client, subscriber, multipart
):
    url = newsletter_url(subscriber)
    if multipart:
        response = strict_client.post(url, ONE_CLICK)
    else:
        response = strict_client.post(
            url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )

    assert response.status_code == 200
    assert "Location" not in response.headers
    entry = consent_current(contact=subscriber, topic=ConsentTopic.objects.get(key="newsletter"))
    assert not entry.is_granted
    assert entry.method == ConsentEntry.Method.ONE_CLICK
    assert not Suppression.objects.exists()  # scope "topic": only that topic


def test_repeated_one_click_posts_answer_200_and_append_once(strict_client, subscriber):
    url = newsletter_url(subscriber)

    responses = [strict_client.post(url, ONE_CLICK) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert ConsentEntry.objects.filter(contact=subscriber, is_granted=False).count() == 1


def test_scope_all_withdraws_every_topic_and_suppresses(strict_client, subscriber, settings):
    settings.UNSUBSCRIBE_SCOPE = "all"

    response = strict_client.post(newsletter_url(subscriber), ONE_CLICK)

    assert response.status_code == 200
    topics = ConsentTopic.objects.count()
    assert ConsentEntry.objects.filter(contact=subscriber, is_granted=False).count() == topics
    assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBED


def test_get_ten_times_changes_nothing_and_offers_confirm_and_preferences(client, subscriber):
    url = newsletter_url(subscriber)
    before = ledger_state()

    responses = [client.get(url) for _ in range(10)]

    assert all(r.status_code == 200 for r in responses)
    assert ledger_state() == before
    page = responses[0].content.decode()
    assert '<form method="post">' in page and "/preferences/" in page


def test_forged_tampered_wrong_purpose_and_unknown_tokens_get_the_same_404(client, subscriber):
    good = newsletter_url(subscriber).split("/")[2]
    gone = ContactFactory()
    gone_token = newsletter_url(gone).split("/")[2]
    gone.delete()
    tokens = [
        "forged",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        preferences_token(subscriber),
        signing.dumps({"c": subscriber.pk, "t": ""}, salt="another purpose"),
        gone_token,
    ]

    responses = [client.post(f"/unsubscribe/{token}/", ONE_CLICK) for token in tokens]

    assert {r.status_code for r in responses} == {404}
    assert len({r.content for r in responses}) == 1
    assert not ConsentEntry.objects.filter(is_granted=False).exists()


def test_token_still_works_61_days_later(strict_client, subscriber):
    url = newsletter_url(subscriber)
    later = time.time() + 61 * 86400

    with (
        mock.patch("time.time", return_value=later),
        mock.patch(
            "django.utils.timezone.now",
            return_value=timezone.now() + datetime.timedelta(days=61),
        ),
    ):
        page = strict_client.get(url)
        response = strict_client.post(url, ONE_CLICK)

    assert page.status_code == 200
    assert response.status_code == 200
    assert ConsentEntry.objects.filter(contact=subscriber, is_granted=False).exists()


def test_a_burst_of_100_requests_is_rate_limited(client, subscriber):
    url = newsletter_url(subscriber)

    # One fixed minute: on a slow machine 100 requests could otherwise straddle two windows.
    with mock.patch("crm.public.ratelimit.time") as clock:
        clock.time.return_value = 1_800_000_000.0
        statuses = [client.get(url).status_code for _ in range(100)]

    assert statuses[0] == 200
    assert statuses[-1] == 429


def test_unsubscribe_takes_effect_before_the_next_send(
    clock, consenting_contact, strict_client, django_capture_on_commit_callbacks
):
    build_sequence(
        [email_step("one"), step("wait", "wait_duration", duration={"days": 2}), email_step("two")]
    )
    with django_capture_on_commit_callbacks(execute=True):
        activity_record(kind="form_submitted", source="test", contact=consenting_contact)
    assert len(sent_to(consenting_contact.email)) == 1

    response = strict_client.post(newsletter_url(consenting_contact), ONE_CLICK)
    clock.advance(days=3)
    run(clock)

    assert response.status_code == 200
    assert len(sent_to(consenting_contact.email)) == 1
    assert OutboundMessage.objects.filter(contact=consenting_contact).count() == 1
    assert len(mail.outbox) == 1
