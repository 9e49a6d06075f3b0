import datetime

from django.utils import timezone

from crm.predictions.intent import rising_intent
from tests.factories import ActivityFactory, ContactFactory

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def _did(contact, kind, days_ago, now=NOW, **properties):
    ActivityFactory(contact=contact, kind=kind, occurred_at=now - days_ago * DAY,
                    properties=properties)  # fmt: skip


def test_a_sharp_rise_over_the_contacts_own_baseline_is_flagged_with_its_behaviours(db):
    rising, steady = ContactFactory(), ContactFactory()
    for week in range(1, 9):  # one page view a week for eight weeks, both of them
        _did(rising, "page_viewed", 7 * week + 1)
        _did(steady, "page_viewed", 7 * week + 1)
    for day in range(5):
        _did(rising, "pricing_viewed", day + 0.5)
    _did(rising, "demo_requested", 1)
    _did(steady, "page_viewed", 2)
    for _ in range(6):  # machine opens are not the person
        _did(steady, "email_opened", 1, is_machine_open=True)

    found = rising_intent(contact_ids=[rising.pk, steady.pk], now=NOW)

    assert set(found) == {rising.pk}
    intent = found[rising.pk]
    assert intent.recent == 6 and intent.weekly_baseline == 1.0
    assert intent.behaviours[0] == ("pricing_viewed", 5, 0.0)


def test_the_contact_page_shows_the_flag(db, client, superuser):
    contact = ContactFactory()
    for day in range(6):
        # The page reads the real clock.
        _did(contact, "pricing_viewed", day * 0.5 + 0.1, now=timezone.now())
    client.force_login(superuser)

    page = client.get(f"/admin/crm/contact/{contact.pk}/change/", secure=True)

    assert "<strong>Rising intent</strong>: 6 engaged actions" in page.content.decode()
