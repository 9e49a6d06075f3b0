"""scoring's dashboard panels: the sales queue on the home, handoff SLA and scores in Reports."""

import datetime

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from scoring.admin.dashboard import score_bins
from scoring.models import Handoff
from scoring.selectors import handoff_queue_counts, handoff_queue_for, handoff_sla_by_week
from tests.factories import ContactFactory, HandoffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _minutes(minutes: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(minutes=minutes)


def _handoff(*, created_days_ago: float = 0, **fields) -> Handoff:
    handoff = HandoffFactory(**fields)
    if created_days_ago:
        created = timezone.now() - datetime.timedelta(days=created_days_ago)
        Handoff.objects.filter(pk=handoff.pk).update(created_at=created)
        handoff.refresh_from_db()
    return handoff


@pytest.fixture
def queue(salesperson):
    other = UserFactory(username="other-seller", groups=["Sales"])
    return {
        "mine_late": _handoff(owner=salesperson, sla_due_at=_minutes(-20)),
        "unassigned": _handoff(sla_due_at=_minutes(30)),
        "mine_later": _handoff(owner=salesperson, sla_due_at=_minutes(90)),
        "others": _handoff(owner=other, sla_due_at=_minutes(-60)),
        "closed": _handoff(owner=salesperson, status=Handoff.Status.ACCEPTED),
        # Contacted long ago, still open (not yet accepted): its SLA is settled.
        "contacted": _handoff(
            owner=salesperson, status=Handoff.Status.CONTACTED, sla_due_at=_minutes(-600)
        ),
    }


def test_the_queue_is_mine_and_unassigned_waiting_ones_most_urgent_first(queue, salesperson):
    handoffs = handoff_queue_for(user=salesperson)

    assert handoffs == [
        queue["mine_late"],
        queue["unassigned"],
        queue["mine_later"],
        queue["contacted"],
    ]
    assert handoff_queue_counts(user=salesperson).__dict__ == {
        "mine": 3,
        "unassigned": 1,
        "overdue": 1,
    }


def test_a_salesperson_sees_their_queue_with_sla_timers_on_the_home(client, queue, salesperson):
    client.force_login(salesperson)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert 'id="panel-handoff-queue"' in html
    assert reverse("admin:scoring_handoff_change", args=[queue["mine_late"].pk]) in html
    assert reverse("admin:scoring_handoff_change", args=[queue["others"].pk]) not in html
    assert "min overdue" in html  # the SLA countdown
    assert "<strong>3</strong> open for you" in html
    assert "nsdash-status-danger" in html


def test_the_handoff_sla_report_counts_met_missed_and_running_per_week(client, marketer):
    _handoff(
        created_days_ago=1, contacted_at=_minutes(-60 * 24 + 10), sla_due_at=_minutes(-60 * 23)
    )
    _handoff(created_days_ago=1, contacted_at=_minutes(-60), sla_due_at=_minutes(-60 * 23))
    _handoff(created_days_ago=1, sla_due_at=_minutes(-60 * 23))  # never contacted, overdue
    _handoff(sla_due_at=_minutes(30))  # the clock is still running
    _handoff(created_days_ago=100)  # before the period

    weeks = handoff_sla_by_week(days=30)

    assert sum(w.created for w in weeks) == 4
    assert (sum(w.met for w in weeks), sum(w.missed for w in weeks)) == (1, 2)
    assert sum(w.running for w in weeks) == 1


def test_scores_fall_into_bins_with_zero_apart():
    for score in (-5, 0, 0, 1, 9, 10, 55, 100, 250):
        ContactFactory(lead_score=score)

    bins = {b.shown: b.count for b in score_bins()}

    assert bins["below 0"] == 1
    assert bins["0 (no signals)"] == 2
    assert (bins["1–9"], bins["10–19"], bins["50–59"], bins["100+"]) == (2, 1, 1, 2)


def test_the_reports_dashboard_shows_sla_and_score_charts(client, marketer):
    ContactFactory(lead_score=40)
    ContactFactory(lead_score=0)
    _handoff(created_days_ago=2, contacted_at=_minutes(-60 * 47), sla_due_at=_minutes(-60 * 40))
    client.force_login(marketer)

    html = client.get(reverse("admin:reports_dashboard"), secure=True).content.decode()

    assert 'id="nschart-handoff-sla"' in html
    assert 'id="nschart-score-distribution"' in html
    # Counted, not drawn (it would flatten the rest): this one and the handoff's contact.
    assert "2 more have a score of 0" in html
    assert '<th scope="row">40–49</th><td>1</td>' in html
    assert reverse("admin:scoring_handoff_report") in html  # "More reports"
