"""The contact page: a summary header, the timeline in words, readable consent, one Save bar."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Activity, ConsentTopic
from crm.services import consent_grant, consent_withdraw, note_add
from scoring.services import handoff_reassign
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    EnrollmentFactory,
    HandoffFactory,
    ScoreChangeFactory,
    ScoringRuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


def _page(client, contact) -> str:
    response = client.get(reverse("admin:crm_contact_change", args=[contact.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _summary(body: str) -> str:
    return body[body.index('id="contact-summary"') : body.index("</section>")]


def test_the_header_sums_up_stage_owner_consent_score_and_sequences(admin_client_):
    owner = UserFactory(username="olivia", first_name="Olivia", last_name="Owner")
    contact = ContactFactory(owner=owner, lifecycle_stage_id="engaged_lead", lead_score=45)
    rule = ScoringRuleFactory(key="pricing", name="Pricing page viewed", points=15)
    ScoreChangeFactory(contact=contact, rule=rule, points=45)
    consent_grant(
        contact=contact, topic=ConsentTopic.objects.get(key="newsletter"), method="form", source="x"
    )
    EnrollmentFactory(
        contact=contact,
        version__sequence__name="Welcome series",
        current_step="tips",
        due_at=timezone.now() + datetime.timedelta(hours=3),
    )

    summary = _summary(_page(admin_client_, contact))

    assert "Engaged lead" in summary
    assert "olivia" in summary.lower()
    assert "Newsletter: granted" in summary
    assert ">45</strong> points" in summary
    assert "Pricing page viewed" in summary
    assert "Welcome series" in summary and "step “tips” in 2" in summary


def test_the_timeline_speaks_in_words_not_ids(admin_client_, superuser):
    contact = ContactFactory()
    note_add(contact=contact, body="Called, wants a demo in May", author=superuser)
    ActivityFactory(contact=contact, kind="page_viewed", properties={"path": "/pricing"})
    ActivityFactory(contact=contact, kind="webinar_attended", properties={"webinar_id": 7})

    body = _page(admin_client_, contact)

    timeline = body[body.index('id="timeline"') :]
    assert "added a note: “Called, wants a demo in May”" in timeline
    assert "Viewed /pricing" in timeline
    assert "Webinar attended" in timeline
    assert "note_id" not in timeline and "author_id" not in timeline
    assert not re.search(r">\s*[a-z]+_[a-z_]+\s*<", timeline), "a snake_case kind is shown"


def test_a_reassignment_reads_as_who_gave_the_lead_to_whom_and_why(admin_client_):
    before = UserFactory(first_name="Anna", last_name="Ames", groups=["Sales"])
    after = UserFactory(first_name="Ben", last_name="Bay", groups=["Sales"])
    manager = UserFactory(first_name="Carla", last_name="Cole", groups=["Sales", "Sales manager"])
    handoff = HandoffFactory(owner=before)
    handoff_reassign(handoff=handoff, owner=after, by=manager, reason="Anna is on leave")

    body = _page(admin_client_, handoff.contact)

    assert "Lead reassigned from Anna Ames to Ben Bay by Carla Cole: “Anna is on leave”" in body
    assert Activity.objects.filter(kind="handoff_reassigned").count() == 1


def test_consent_states_are_chips_with_words_for_each_state(admin_client_):
    contact = ContactFactory()
    newsletter = ConsentTopic.objects.get(key="newsletter")
    consent_grant(contact=contact, topic=newsletter, method="form", source="x")
    offers = ConsentTopic.objects.get(key="offers")
    consent_grant(contact=contact, topic=offers, method="form", source="x")
    consent_withdraw(contact=contact, topic=offers, method="admin", source="call")

    body = _page(admin_client_, contact)

    assert 'class="consent-state consent-granted">granted' in body
    assert 'class="consent-state consent-withdrawn">withdrawn' in body
    assert "crm/contact_page.css" in body


def test_there_is_one_save_bar_below_every_section(admin_client_):
    contact = ContactFactory()
    ActivityFactory(contact=contact, kind="page_viewed", properties={"path": "/"})

    body = _page(admin_client_, contact)

    assert body.count('class="submit-row"') == 1
    save = body.index('class="submit-row"')
    for section in ('id="timeline"', 'id="consent"', 'id="deals"', "Score breakdown"):
        assert body.index(section) < save, section
    assert body.index('id="contact-summary"') < body.index("<fieldset")
