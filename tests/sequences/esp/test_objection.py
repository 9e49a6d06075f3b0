"""An objection to direct marketing is absolute (reliability.md §8 item 13).

An objection is an unsubscribe from all mail or a spam complaint (an active
`unsubscribed` or `complaint` suppression). Afterwards: no marketing sends, out of
every marketing segment's sendable audience, no engagement scoring, and no role
lifts a complaint.
"""

import pytest

from crm.models import Activity, Contact, Suppression
from crm.segment_selectors import contacts_sendable
from crm.selectors import contact_ids_objected
from crm.services import ActivityInput, activity_record_batch, suppression_add
from sequences.gate import evaluate
from tests.factories import ContactFactory
from tests.scoring.conftest import engagement_rule
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db
Reason = Suppression.Reason
OBJECTIONS = [Reason.UNSUBSCRIBED, Reason.COMPLAINT]


def object_to_marketing(contact: Contact, reason: str) -> Suppression:
    return suppression_add(email=contact.email, reason=reason, source="esp:postmark")


def page_view(contact: Contact) -> ActivityInput:
    return ActivityInput(
        kind=Activity.Kind.PAGE_VIEWED,
        source="test",
        contact_id=contact.pk,
        properties={"path": "/pricing"},
    )


@pytest.mark.parametrize("reason", OBJECTIONS)
def test_after_an_objection_the_gate_denies_marketing(reason, consenting_contact, clock):
    marketing = build_sequence([email_step("hello")])
    object_to_marketing(consenting_contact, reason)

    decision = evaluate(consenting_contact, marketing, {"key": "hello", "config": {}}, clock.now)

    assert (decision.allowed, decision.reason) == (False, f"suppressed:{reason}")


@pytest.mark.parametrize("reason", OBJECTIONS)
def test_an_objector_is_not_sendable_in_any_marketing_segment(
    reason, consenting_contact, newsletter
):
    object_to_marketing(consenting_contact, reason)

    assert not contacts_sendable(Contact.objects.all(), topic=newsletter).exists()


@pytest.mark.parametrize("reason", OBJECTIONS)
def test_engagement_scoring_stops_for_an_objector_but_not_for_others(reason, db):
    engagement_rule("pricing", points=10)
    objector, other = ContactFactory(), ContactFactory()
    object_to_marketing(objector, reason)

    activity_record_batch(items=[page_view(objector), page_view(other)])

    objector.refresh_from_db()
    other.refresh_from_db()
    assert (objector.lead_score, other.lead_score) == (0, 10)


def test_other_suppressions_are_not_objections(db):
    bounced, inactive = ContactFactory(), ContactFactory()
    object_to_marketing(bounced, Reason.HARD_BOUNCE)
    object_to_marketing(inactive, Reason.INACTIVE)

    assert contact_ids_objected([bounced.pk, inactive.pk]) == set()


def test_objected_contacts_are_found_in_one_query(db, django_assert_num_queries):
    contacts = ContactFactory.create_batch(5)
    object_to_marketing(contacts[0], Reason.COMPLAINT)
    object_to_marketing(contacts[3], Reason.UNSUBSCRIBED)

    with django_assert_num_queries(1):
        objected = contact_ids_objected([contact.pk for contact in contacts])

    assert objected == {contacts[0].pk, contacts[3].pk}


def test_not_even_a_superuser_lifts_a_complaint_in_the_admin(client, superuser, contact):
    complaint = object_to_marketing(contact, Reason.COMPLAINT)
    client.force_login(superuser)

    response = client.post(
        "/admin/crm/suppression/",
        {
            "action": "lift",
            "_selected_action": [complaint.pk],
            "lift_reason": "The customer asked us on the phone.",
        },
        follow=True,
    )

    assert Suppression.objects.filter(pk=complaint.pk).exists()
    assert "only their own new consent" in response.content.decode()
