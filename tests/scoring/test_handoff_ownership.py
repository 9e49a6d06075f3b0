"""A lead routed to a salesperson is theirs: others are refused in the service, in the admin
and in the API; a Sales manager reassigns with a reason, and every owner change is recorded."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.models import Activity
from scoring.models import Handoff
from scoring.services import (
    handoff_accept,
    handoff_claim,
    handoff_mark_contacted,
    handoff_reassign,
    handoff_recycle,
    handoff_reject,
)
from tests.factories import HandoffFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:scoring_handoff_changelist")


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", groups=["Sales"])


@pytest.fixture
def colleague(db):
    return UserFactory(username="colleague", groups=["Sales"])


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", groups=["Sales", "Sales manager"])


def _act(service, handoff, user):
    if service in (handoff_recycle, handoff_reject):
        return service(handoff=handoff, user=user, reason="Not now")
    return service(handoff=handoff, user=user)


@pytest.mark.parametrize(
    "service",
    [handoff_claim, handoff_mark_contacted, handoff_accept, handoff_recycle, handoff_reject],
)
def test_nobody_but_the_owner_may_work_a_routed_lead(service, owner, colleague):
    handoff = HandoffFactory(owner=owner)

    with pytest.raises(ValidationError, match="only they can work it"):
        _act(service, handoff, colleague)

    handoff.refresh_from_db()
    assert (handoff.status, handoff.owner) == ("new", owner)


@pytest.mark.parametrize(
    "service",
    [handoff_claim, handoff_mark_contacted, handoff_accept, handoff_recycle, handoff_reject],
)
def test_the_owner_works_their_lead(service, owner):
    handoff = HandoffFactory(owner=owner)

    _act(service, handoff, owner)

    handoff.refresh_from_db()
    assert handoff.owner == owner
    assert handoff.status != "new"


def test_an_unassigned_lead_becomes_whoever_works_it(colleague):
    handoff = HandoffFactory(owner=None)

    handoff_recycle(handoff=handoff, user=colleague, reason="Not before Q3")

    handoff.refresh_from_db()
    assert (handoff.status, handoff.owner) == ("recycled", colleague)


def test_a_manager_must_reassign_rather_than_work_someone_elses_lead(owner, manager):
    handoff = HandoffFactory(owner=owner)

    with pytest.raises(ValidationError, match="only they can work it"):
        handoff_accept(handoff=handoff, user=manager)


def test_a_manager_reassigns_with_a_reason_and_it_is_recorded(owner, colleague, manager):
    handoff = HandoffFactory(owner=owner)

    handoff_reassign(handoff=handoff, owner=colleague, by=manager, reason="Owner on holiday")

    handoff.refresh_from_db()
    assert (handoff.owner, handoff.status) == (colleague, "new")
    assert handoff.routed_by == "reassigned by manager"
    record = Activity.objects.get(kind="handoff_reassigned")
    assert record.contact_id == handoff.contact_id
    assert record.properties == {
        "handoff_id": handoff.pk,
        "from_owner_id": owner.pk,
        "to_owner_id": colleague.pk,
        "by_user_id": manager.pk,
        "reason": "Owner on holiday",
    }


def test_reassigning_needs_a_manager_and_a_reason(owner, colleague, manager):
    handoff = HandoffFactory(owner=owner)

    with pytest.raises(ValidationError, match="Only a Sales manager"):
        handoff_reassign(handoff=handoff, owner=colleague, by=owner, reason="Swap")
    with pytest.raises(ValidationError, match="Say why"):
        handoff_reassign(handoff=handoff, owner=colleague, by=manager, reason=" ")

    handoff.refresh_from_db()
    assert handoff.owner == owner
    assert not Activity.objects.filter(kind="handoff_reassigned").exists()


# --- The queue -------------------------------------------------------------------------------


def test_the_queue_defaults_to_mine_and_unassigned(client, owner, colleague):
    HandoffFactory(owner=owner, contact__first_name="Mine")
    HandoffFactory(owner=None, contact__first_name="Nobodys")
    HandoffFactory(owner=colleague, contact__first_name="Theirs")
    client.force_login(owner)

    default = client.get(QUEUE).content.decode()
    everyone = client.get(QUEUE, {"assigned": "everyone"}).content.decode()

    assert "Mine" in default and "Nobodys" in default
    assert "Theirs" not in default
    assert "Theirs" in everyone


def test_each_row_links_to_its_handoff_with_the_contacts_name(client, owner):
    handoff = HandoffFactory(owner=owner, contact__first_name="Ada", contact__last_name="Byron")
    client.force_login(owner)

    body = client.get(QUEUE).content.decode()

    url = reverse("admin:scoring_handoff_change", args=[handoff.pk])
    assert f'<a class="handoff-link" href="{url}">Ada Byron</a>' in body
    assert "scoring/handoff_queue.js" in body


def test_a_bulk_claim_refuses_someone_elses_lead(client, owner, colleague):
    handoff = HandoffFactory(owner=owner)
    client.force_login(colleague)

    response = client.post(
        QUEUE + "?assigned=everyone",
        {"action": "claim", ACTION_CHECKBOX_NAME: [handoff.pk]},
        follow=True,
    )

    assert "only they can work it" in response.content.decode()
    assert Handoff.objects.get().owner == owner


def test_someone_elses_handoff_page_says_whose_it_is_and_offers_no_actions(
    client, owner, colleague
):
    handoff = HandoffFactory(owner=owner)
    client.force_login(colleague)

    body = client.get(reverse("admin:scoring_handoff_change", args=[handoff.pk])).content.decode()
    posted = client.post(reverse("admin:scoring_handoff_act", args=[handoff.pk, "accept"]))

    assert "only they can work it" in body
    assert "Work this lead" not in body
    assert "handoff-reassign" not in body
    assert posted.status_code == 302
    assert Handoff.objects.get().status == "new"


def test_a_manager_reassigns_from_the_handoff_page(client, owner, colleague, manager):
    handoff = HandoffFactory(owner=owner)
    client.force_login(manager)
    url = reverse("admin:scoring_handoff_reassign", args=[handoff.pk])

    page = client.get(reverse("admin:scoring_handoff_change", args=[handoff.pk]))
    missing = client.post(url, {"owner": colleague.pk, "reason": ""})
    done = client.post(url, {"owner": colleague.pk, "reason": "Speaks German"}, follow=True)

    assert url in page.content.decode()
    assert missing.status_code == 200
    assert "Speaks German" in Activity.objects.get(kind="handoff_reassigned").properties["reason"]
    assert Handoff.objects.get().owner == colleague
    assert "reassigned to colleague" in done.content.decode()


def test_a_salesperson_cannot_open_the_reassign_page(client, owner, colleague):
    handoff = HandoffFactory(owner=owner)
    client.force_login(colleague)

    response = client.post(
        reverse("admin:scoring_handoff_reassign", args=[handoff.pk]),
        {"owner": colleague.pk, "reason": "Mine now"},
    )

    assert response.status_code == 403
    assert Handoff.objects.get().owner == owner
