"""The preference centre: topics on/off, a 30-day pause the send gate honours, leave all."""

import datetime
import time
from unittest import mock

import pytest
from django.utils import timezone

from crm.links import preferences_token, unsubscribe_url
from crm.models import ConsentEntry, ConsentTopic, ContactPreference, Suppression
from crm.selectors import consent_current, contact_paused_until
from sequences.gate import evaluate
from tests.factories import ConsentTopicFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db


def url_for(contact) -> str:
    return f"/preferences/{preferences_token(contact)}/"


def test_page_shows_topics_with_current_choices(client, subscriber):
    response = client.get(url_for(subscriber))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="newsletter"' in page and "checked" in page
    assert "Pause all marketing email for 30 days" in page


def test_turning_topics_on_and_off_appends_to_the_ledger(client, subscriber):
    offers = ConsentTopic.objects.exclude(key="newsletter").filter(is_active=True).first()

    response = client.post(url_for(subscriber), {"topics": [offers.key]}, HTTP_USER_AGENT="Test/1")

    assert response.status_code == 200 and "Your preferences are saved" in response.content.decode()
    newsletter = ConsentTopic.objects.get(key="newsletter")
    withdrawn = consent_current(contact=subscriber, topic=newsletter)
    granted = consent_current(contact=subscriber, topic=offers)
    assert not withdrawn.is_granted and granted.is_granted
    for entry in (withdrawn, granted):
        assert entry.method == ConsentEntry.Method.PREFERENCE_CENTRE
        assert entry.source == "preference centre"
        assert entry.ip_address == "127.0.0.1" and entry.user_agent == "Test/1"


def test_pause_defers_marketing_for_30_days(client, subscriber):
    response = client.post(url_for(subscriber), {"topics": ["newsletter"], "pause": "on"})

    assert response.status_code == 200
    paused_until = contact_paused_until(contact=subscriber)
    expected = timezone.now() + datetime.timedelta(days=30)
    assert abs(paused_until - expected) < datetime.timedelta(minutes=1)
    sequence = build_sequence([email_step("hello")], trigger=None)
    decision = evaluate(subscriber, sequence, {"config": {}}, timezone.now())
    assert (decision.allowed, decision.reason) == (False, "paused_by_contact")
    assert decision.defer_until == paused_until
    # Consent itself is unchanged by a pause.
    assert ConsentEntry.objects.filter(contact=subscriber).count() == 1


def test_an_expired_pause_no_longer_holds_marketing(subscriber):
    ContactPreference.objects.create(
        contact=subscriber, paused_until=timezone.now() - datetime.timedelta(minutes=1)
    )

    assert contact_paused_until(contact=subscriber) is None


def test_unsubscribe_from_all_withdraws_every_topic_and_suppresses(client, subscriber):
    ConsentTopicFactory(key="webinars")

    client.post(url_for(subscriber), {"unsubscribe_all": "on"})

    for topic in ConsentTopic.objects.all():
        entry = consent_current(contact=subscriber, topic=topic)
        assert not entry.is_granted and entry.method == ConsentEntry.Method.PREFERENCE_CENTRE
    assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBED


def test_resubscribing_lifts_only_the_unsubscribe_suppression(client, subscriber):
    client.post(url_for(subscriber), {"unsubscribe_all": "on"})

    client.post(url_for(subscriber), {"topics": ["newsletter"]})

    assert not Suppression.objects.exists()
    assert consent_current(
        contact=subscriber, topic=ConsentTopic.objects.get(key="newsletter")
    ).is_granted


def test_get_changes_nothing(client, subscriber):
    for _ in range(10):
        client.get(url_for(subscriber))

    assert ConsentEntry.objects.count() == 1
    assert not ContactPreference.objects.exists()


def test_unsubscribe_token_does_not_open_the_preference_centre(client, subscriber):
    token = unsubscribe_url(subscriber).rstrip("/").rsplit("/", 1)[1]

    assert client.get(f"/preferences/{token}/").status_code == 404


def test_preference_link_works_61_days_later(client, subscriber):
    url = url_for(subscriber)

    with mock.patch("time.time", return_value=time.time() + 61 * 86400):
        response = client.get(url)

    assert response.status_code == 200


def test_preference_centre_is_rate_limited(client, subscriber):
    url = url_for(subscriber)

    statuses = [client.get(url).status_code for _ in range(100)]

    assert statuses[0] == 200 and statuses[-1] == 429
