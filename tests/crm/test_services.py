"""Lifecycle stages, suppressions, deals, companies, tasks and notes."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.emails import email_hash
from crm.models import (
    Activity,
    Contact,
    DealStage,
    LifecycleStageChange,
    Suppression,
    SuppressionLift,
    Task,
)
from crm.selectors import contact_is_suppressed_expression, suppressions_active_for
from crm.services import (
    TaskInput,
    company_upsert,
    deal_create,
    deal_move_stage,
    lifecycle_stage_change,
    lifecycle_stage_change_many,
    note_add,
    suppression_add,
    suppression_lift,
    task_complete,
    task_create,
    tasks_create,
)
from crm.signals import lifecycle_stage_changed
from tests.factories import ContactFactory, UserFactory


def stage(key):
    return DealStage.objects.get(key=key)


@pytest.mark.django_db
def test_stage_change_records_who_why_activity_and_signal():
    contact = ContactFactory()
    rep = UserFactory()
    heard = []
    lifecycle_stage_changed.connect(
        lambda sender, contact, change, **kw: heard.append(change), weak=False, dispatch_uid="t"
    )

    change = lifecycle_stage_change(
        contact=contact, stage="opportunity", source="admin", reason="demo booked", changed_by=rep
    )

    lifecycle_stage_changed.disconnect(dispatch_uid="t")
    contact.refresh_from_db()
    assert contact.lifecycle_stage_id == "opportunity"
    assert contact.lifecycle_stage_changed_at == change.changed_at
    assert (change.from_stage_id, change.to_stage_id, change.changed_by, change.reason) == (
        "new_lead",
        "opportunity",
        rep,
        "demo booked",
    )
    activity = Activity.objects.get(contact=contact, kind="lifecycle_stage_changed")
    assert activity.properties == {"from": "new_lead", "to": "opportunity", "by": "admin"}
    assert heard == [change]


@pytest.mark.django_db
def test_moving_to_the_current_stage_records_nothing():
    contact = ContactFactory()

    assert lifecycle_stage_change(contact=contact, stage="new_lead", source="api") is None
    assert not LifecycleStageChange.objects.exists()


@pytest.mark.django_db
def test_unknown_stage_is_refused_readably():
    with pytest.raises(ValidationError, match="no lifecycle stage 'royalty'"):
        lifecycle_stage_change(contact=ContactFactory(), stage="royalty", source="api")


@pytest.mark.django_db
def test_many_stage_changes_are_recorded_as_one_each_in_fixed_queries():
    lone = ContactFactory()
    movers = ContactFactory.create_batch(5)
    there = ContactFactory(lifecycle_stage_id="opportunity")
    heard = []
    lifecycle_stage_changed.connect(
        lambda sender, contact, change, **kw: heard.append(contact.pk), weak=False, dispatch_uid="m"
    )

    with CaptureQueriesContext(connection) as one:
        lifecycle_stage_change_many(contacts=[lone], stage="opportunity", source="handoff rule x")
    heard.clear()
    with CaptureQueriesContext(connection) as many:
        changes = lifecycle_stage_change_many(
            contacts=[*movers, there], stage="opportunity", source="handoff rule x", reason="r"
        )

    # The same statements for 1 and for 5 (the activities' receivers included).
    assert len(many) == len(one)
    lifecycle_stage_changed.disconnect(dispatch_uid="m")
    assert sorted(change.contact_id for change in changes) == sorted(c.pk for c in movers)
    assert heard == sorted(c.pk for c in movers)
    assert all(c.lifecycle_stage_id == "opportunity" for c in movers)
    assert set(Contact.objects.values_list("lifecycle_stage", flat=True)) == {"opportunity"}
    assert LifecycleStageChange.objects.get(contact=movers[0]).reason == "r"
    assert LifecycleStageChange.objects.filter(contact=there).count() == 0
    activities = Activity.objects.filter(kind="lifecycle_stage_changed").exclude(contact=lone)
    assert sorted(activities.values_list("contact_id", flat=True)) == sorted(c.pk for c in movers)
    assert activities.first().properties == {
        "from": "new_lead",
        "to": "opportunity",
        "by": "handoff rule x",
    }
    with pytest.raises(ValidationError, match="no lifecycle stage 'royalty'"):
        lifecycle_stage_change_many(contacts=movers, stage="royalty", source="api")


@pytest.mark.django_db
def test_many_tasks_are_checked_like_one_and_written_in_one_insert():
    owner = UserFactory()
    contact = ContactFactory(owner=owner)

    tasks = tasks_create(
        items=[TaskInput(title="Call", contact=contact), TaskInput(title="Mail", owner=owner)]
    )

    assert [(t.title, t.owner, t.status) for t in Task.objects.order_by("pk")] == [
        ("Call", owner, "open"),
        ("Mail", owner, "open"),
    ]
    assert all(task.pk for task in tasks)
    with pytest.raises(ValidationError):
        tasks_create(items=[TaskInput(title="x" * 201)])


@pytest.mark.django_db
def test_suppression_is_keyed_by_normalised_address_and_adding_again_changes_nothing():
    first = suppression_add(email=" Ann@Example.com", reason="hard_bounce", source="postmark")

    again = suppression_add(email="ann@example.com ", reason="hard_bounce", source="other")

    assert again.pk == first.pk and again.source == "postmark"
    assert first.email == "ann@example.com"
    assert list(suppressions_active_for(email="ANN@example.com")) == [first]


@pytest.mark.django_db
def test_suppression_outlives_the_contact():
    contact = ContactFactory(email="gone@example.com")
    suppression_add(email=contact.email, reason="unsubscribed", source="one-click")

    contact.delete()

    assert suppressions_active_for(email="gone@example.com").exists()


@pytest.mark.django_db
def test_erased_addresses_are_kept_only_as_a_keyed_hash():
    suppression = suppression_add(email="Erased@Example.com", reason="erased", source="privacy")

    assert suppression.email == ""
    assert suppression.email_hash == email_hash("erased@example.com")
    assert suppressions_active_for(email=" ERASED@example.com").exists()


@pytest.mark.django_db
def test_soft_bounce_suppression_ends_and_only_it_may():
    ends = timezone.now() + datetime.timedelta(days=3)
    suppression_add(email="soft@example.com", reason="soft_bounce", source="ses", expires_at=ends)

    with pytest.raises(ValidationError, match="Only soft-bounce"):
        suppression_add(
            email="hard@example.com", reason="hard_bounce", source="ses", expires_at=ends
        )
    assert suppressions_active_for(email="soft@example.com").exists()
    Suppression.objects.filter(email="soft@example.com").update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert not suppressions_active_for(email="soft@example.com").exists()


@pytest.mark.django_db
def test_suppressed_contacts_can_be_filtered_in_one_query():
    suppressed = ContactFactory(email="s@example.com")
    ContactFactory(email="ok@example.com")
    suppression_add(email="S@example.com", reason="manual", source="admin")

    found = Contact.objects.filter(contact_is_suppressed_expression())

    assert list(found) == [suppressed]


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["complaint", "erased", "unsubscribed"])
def test_no_staff_user_lifts_an_objection(reason):
    suppression = suppression_add(email="x@example.com", reason=reason, source="esp")
    superuser = UserFactory(is_superuser=True)

    with pytest.raises(ValidationError, match="only their own new consent"):
        suppression_lift(
            suppression=suppression, lifted_by=superuser, reason="The customer phoned us."
        )

    assert Suppression.objects.filter(pk=suppression.pk).exists()
    assert not SuppressionLift.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   ", "oops"])
def test_lifting_a_suppression_needs_a_reason(reason):
    suppression = suppression_add(email="x@example.com", reason="manual", source="admin")

    with pytest.raises(ValidationError, match="Give the reason"):
        suppression_lift(suppression=suppression, lifted_by=UserFactory(), reason=reason)

    assert Suppression.objects.filter(pk=suppression.pk).exists()


@pytest.mark.django_db
def test_a_manual_suppression_is_lifted_with_a_reason_and_an_append_only_record():
    suppression = suppression_add(email="X@example.com", reason="manual", source="admin")
    staff = UserFactory()

    lift = suppression_lift(
        suppression=suppression, lifted_by=staff, reason="Typed the wrong address."
    )

    assert not Suppression.objects.exists()
    assert (lift.email_hash, lift.reason, lift.via) == (
        email_hash("x@example.com"),
        "manual",
        "staff",
    )
    assert (lift.lifted_by, lift.note) == (staff, "Typed the wrong address.")
    with pytest.raises(PermissionError):
        lift.delete()
    with pytest.raises(PermissionError):
        SuppressionLift.objects.update(note="rewritten")


@pytest.mark.django_db
def test_deal_moves_record_the_stage_change_and_lost_needs_a_reason():
    contact = ContactFactory()
    deal = deal_create(name="Pilot", stage=stage("qualification"), contact=contact, amount=5000)

    with pytest.raises(ValidationError, match="why the deal was lost"):
        deal_move_stage(deal=deal, stage=stage("lost"))
    lost = deal_move_stage(deal=deal, stage=stage("lost"), lost_reason="No budget")

    assert lost.closed_at is not None and lost.lost_reason == "No budget"
    moves = Activity.objects.filter(contact=contact, kind="deal_stage_changed").order_by("pk")
    assert [(m.properties["from"], m.properties["to"]) for m in moves] == [
        (None, "qualification"),
        ("qualification", "lost"),
    ]


@pytest.mark.django_db
def test_reopening_a_won_deal_clears_its_close():
    deal = deal_create(name="Renewal", stage=stage("won"), contact=ContactFactory(), amount=10)

    reopened = deal_move_stage(deal=deal, stage=stage("negotiation"))

    assert deal.closed_at is not None
    assert reopened.closed_at is None


@pytest.mark.django_db
def test_deal_amount_cannot_be_negative_and_currency_is_a_code():
    with pytest.raises(ValidationError) as error:
        deal_create(name="Bad", stage=stage("proposal"), amount=-1, currency="euro")

    assert {"amount", "currency"} <= set(error.value.message_dict)


@pytest.mark.django_db
def test_company_upsert_matches_by_domain_in_any_case():
    first = company_upsert(name="Acme", domain="www.Acme.example")

    again = company_upsert(name="Acme GmbH", domain="acme.example", industry="Tools")

    assert again.pk == first.pk
    assert (again.name, again.domain, again.industry) == ("Acme GmbH", "acme.example", "Tools")


@pytest.mark.django_db
def test_tasks_default_to_the_contact_owner_and_complete_once():
    owner = UserFactory()
    contact = ContactFactory(owner=owner)
    task = task_create(title="Call about renewal", contact=contact)

    done = task_complete(task=task)
    completed_at = done.completed_at
    again = task_complete(task=task)

    assert task.owner == owner
    assert done.status == Task.Status.DONE
    assert again.completed_at == completed_at


@pytest.mark.django_db
def test_a_note_lands_on_the_timeline():
    contact = ContactFactory()
    author = UserFactory()

    note = note_add(contact=contact, body="Asked for a discount", author=author)

    activity = Activity.objects.get(contact=contact, kind="note_added")
    assert activity.properties == {"note_id": note.pk, "author_id": author.pk}
