"""The handoff queue, its actions and report, the rules' admin and the contact's score panel."""

import datetime
import json
from html import unescape

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from crm.models import Deal
from scoring.models import Handoff, ScoringRule
from tests.factories import ContactFactory, HandoffFactory, UserFactory
from tests.scoring.conftest import engagement_rule, fit_rule, record

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:scoring_handoff_changelist")


def _act_url(handoff: Handoff, action: str) -> str:
    return reverse("admin:scoring_handoff_act", args=[handoff.pk, action])


@pytest.fixture
def sales_client(client, salesperson):
    client.force_login(salesperson)
    return client


def test_the_queue_shows_open_handoffs_with_reasons_and_breached_slas(sales_client):
    late = HandoffFactory(sla_due_at=timezone.now() - datetime.timedelta(minutes=12))
    HandoffFactory(status="rejected", close_reason="No budget", contact__first_name="Zebulon")

    page = sales_client.get(QUEUE)

    body = page.content.decode()
    assert page.status_code == 200
    assert str(late.contact) in body
    assert "Zebulon" not in body
    assert "+40 Pricing page viewed" in body
    assert "sla-breached" in body
    assert "12 min overdue" in body


def test_claim_from_the_queue(sales_client, salesperson):
    handoff = HandoffFactory()

    response = sales_client.post(
        QUEUE, {"action": "claim", ACTION_CHECKBOX_NAME: [handoff.pk]}, follow=True
    )

    handoff.refresh_from_db()
    assert (handoff.status, handoff.owner) == ("claimed", salesperson)
    assert "1 handoff(s) claimed." in response.content.decode()


def test_recycle_from_the_queue_asks_for_a_reason_first(sales_client):
    handoff = HandoffFactory()
    chosen = {"action": "recycle", ACTION_CHECKBOX_NAME: [handoff.pk]}

    asked = sales_client.post(QUEUE, chosen)
    refused = sales_client.post(QUEUE, {**chosen, "apply": "1", "reason": ""})
    done = sales_client.post(QUEUE, {**chosen, "apply": "1", "reason": "Wrong segment"})

    assert asked.status_code == 200
    assert "Reason" in asked.content.decode()
    assert "This field is required" in refused.content.decode()
    assert done.status_code == 302
    handoff.refresh_from_db()
    assert (handoff.status, handoff.close_reason) == ("recycled", "Wrong segment")


def test_the_handoff_page_offers_the_actions(sales_client):
    handoff = HandoffFactory()

    page = sales_client.get(reverse("admin:scoring_handoff_change", args=[handoff.pk]))

    body = page.content.decode()
    assert page.status_code == 200
    assert _act_url(handoff, "accept") in body
    assert _act_url(handoff, "reject") in body
    assert 'name="_save"' not in body


def test_accept_from_the_handoff_page(sales_client, salesperson):
    handoff = HandoffFactory(owner=salesperson)

    response = sales_client.post(_act_url(handoff, "accept"))

    assert response.status_code == 302
    handoff.refresh_from_db()
    assert handoff.status == "accepted"
    assert Deal.objects.get().contact == handoff.contact


def test_reject_from_the_handoff_page_needs_a_reason(sales_client):
    handoff = HandoffFactory()

    form = sales_client.get(_act_url(handoff, "reject"))
    refused = sales_client.post(_act_url(handoff, "reject"), {"reason": " "})
    done = sales_client.post(_act_url(handoff, "reject"), {"reason": "Consultant, not a buyer"})

    assert form.status_code == 200
    assert refused.status_code == 200
    assert done.status_code == 302
    handoff.refresh_from_db()
    assert (handoff.status, handoff.close_reason) == ("rejected", "Consultant, not a buyer")


def test_acting_on_a_closed_handoff_shows_the_services_message(sales_client, salesperson):
    handoff = HandoffFactory(status="rejected", close_reason="No")

    response = sales_client.post(_act_url(handoff, "claim"), follow=True)

    assert "already rejected" in response.content.decode()


def test_marketing_may_look_but_not_act(client, marketer):
    client.force_login(marketer)
    handoff = HandoffFactory()

    page = client.get(reverse("admin:scoring_handoff_change", args=[handoff.pk]))
    acted = client.post(_act_url(handoff, "claim"))

    assert page.status_code == 200
    assert _act_url(handoff, "claim") not in page.content.decode()
    assert acted.status_code == 403


def test_the_report_counts_outcomes_per_rule(client, marketer):
    client.force_login(marketer)
    first = HandoffFactory(status="accepted")
    HandoffFactory(rule=first.rule, status="recycled", close_reason="Timing: next quarter")
    HandoffFactory(rule=first.rule)

    page = client.get(reverse("admin:scoring_handoff_report"))

    body = page.content.decode()
    assert page.status_code == 200
    assert first.rule.name in body
    assert "Timing: next quarter" in body
    assert "50%" in body


def test_a_fit_rule_refuses_a_condition_on_what_the_person_did(client, superuser):
    client.force_login(superuser)
    did = {"field": "activity", "operator": "at_least", "kind": "page_viewed", "count": 1}
    title = {"field": "job_title", "operator": "contains", "value": "head of"}
    data = {
        "key": "senior",
        "name": "Senior",
        "description": "",
        "category": "fit",
        "is_active": "on",
        "points": "10",
        "activity_kind": "",
        "cap_period_days": "7",
        "conditions": json.dumps({"match": "all", "conditions": [did]}),
    }

    refused = client.post(reverse("admin:scoring_scoringrule_add"), data)
    data["conditions"] = json.dumps({"match": "all", "conditions": [title]})
    saved = client.post(reverse("admin:scoring_scoringrule_add"), data)

    assert "Fit rules test who the person is: activity cannot be used" in unescape(
        refused.content.decode()
    )
    assert saved.status_code == 302
    assert ScoringRule.objects.get().conditions == {"match": "all", "conditions": [title]}


def test_the_rule_page_draws_the_condition_builder_in_the_rule_mode(client, superuser):
    client.force_login(superuser)
    engagement = engagement_rule("pricing", points=5)
    fit = fit_rule("title", 10, [("job_title", "contains", "head")])

    engagement_page = client.get(reverse("admin:scoring_scoringrule_change", args=[engagement.pk]))
    fit_page = client.get(reverse("admin:scoring_scoringrule_change", args=[fit.pk]))

    assert 'data-condition-builder="activity"' in engagement_page.content.decode()
    assert 'data-condition-builder="contact"' in fit_page.content.decode()
    assert "crm/segment_builder.js" in fit_page.content.decode()


def test_the_contact_page_shows_the_score_and_its_reasons(client, superuser):
    client.force_login(superuser)
    engagement_rule("pricing", points=25, name="Pricing page visited")
    fit_rule("title", 10, [("job_title", "contains", "head")])
    person = ContactFactory(job_title="Head of Growth")
    record(person, times=2)

    page = client.get(reverse("admin:crm_contact_change", args=[person.pk]))

    body = page.content.decode()
    assert "Score breakdown" in body
    assert "50 engagement · 10 fit" in body
    assert "+50 Pricing page visited (twice this week)" in body
    assert "+10 Title" in body


def test_sales_without_ledger_access_still_see_the_score(client):
    viewer = UserFactory(username="cs", groups=["Customer success"])
    client.force_login(viewer)
    person = ContactFactory()

    page = client.get(reverse("admin:crm_contact_change", args=[person.pk]))

    assert "Score breakdown" in page.content.decode()
