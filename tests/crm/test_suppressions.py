"""Suppressions: a soft bounce that comes back, and lifting with a reason and a record.

Issue 9, finding 14: an ended soft-bounce suppression could never be applied again.
Finding 16: a superuser could lift an `unsubscribed` suppression with no reason and no
record; objections are now the person's alone, and every lift leaves an append-only row.
"""

import datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from crm.emails import email_hash
from crm.models import Suppression, SuppressionLift
from crm.selectors import suppressions_active_for
from crm.services import suppression_add
from tests.factories import SuppressionLiftFactory, UserFactory

pytestmark = pytest.mark.django_db
Reason = Suppression.Reason
DAYS = datetime.timedelta(days=1)


def soft_bounce(email: str, ends: datetime.datetime) -> Suppression:
    return suppression_add(email=email, reason=Reason.SOFT_BOUNCE, source="esp", expires_at=ends)


# --- Finding 14: soft bounces ----------------------------------------------------------------


def test_a_soft_bounce_suppression_applies_again_after_it_ended():
    now = timezone.now()
    soft_bounce("flaky@example.com", ends=now - DAYS)
    assert not suppressions_active_for(email="flaky@example.com").exists()

    again = soft_bounce("flaky@example.com", ends=now + 30 * DAYS)

    assert suppressions_active_for(email="flaky@example.com").get() == again
    assert again.expires_at == now + 30 * DAYS
    assert Suppression.objects.count() == 1  # the same row, its end moved out


def test_a_soft_bounce_suppression_is_never_shortened():
    now = timezone.now()
    first = soft_bounce("flaky@example.com", ends=now + 30 * DAYS)

    sooner = soft_bounce("flaky@example.com", ends=now + 2 * DAYS)

    assert sooner.pk == first.pk and sooner.expires_at == now + 30 * DAYS


def test_a_permanent_suppression_stays_permanent():
    permanent = suppression_add(email="x@example.com", reason=Reason.SOFT_BOUNCE, source="admin")

    again = soft_bounce("x@example.com", ends=timezone.now() + DAYS)

    assert again.pk == permanent.pk and again.expires_at is None


def test_soft_bounces_after_a_cool_down_suppress_the_address_again(settings):
    from sequences.esp.processing import esp_events_process
    from sequences.models import EspEvent
    from tests.factories import EspEventFactory

    settings.DELIVERABILITY_SOFT_BOUNCE_LIMIT = 2
    soft_bounce("flaky@example.com", ends=timezone.now() - DAYS)  # an earlier, ended cool-down
    for n in range(2):
        EspEventFactory(
            recipient="flaky@example.com",
            kind=EspEvent.Kind.SOFT_BOUNCE,
            event_type="bounced",
            message_key=f"message-{n}",
        )

    esp_events_process()

    assert suppressions_active_for(email="flaky@example.com").get().reason == Reason.SOFT_BOUNCE


# --- Finding 16: lifting ---------------------------------------------------------------------


def lift_in_admin(client, suppression, **data):
    return client.post(
        "/admin/crm/suppression/",
        {"action": "lift", "_selected_action": [suppression.pk], **data},
        follow=True,
    )


def test_the_admin_asks_for_a_reason_before_lifting(client, superuser):
    manual = suppression_add(email="x@example.com", reason=Reason.MANUAL, source="admin")
    client.force_login(superuser)

    asked = lift_in_admin(client, manual)
    refused = lift_in_admin(client, manual, lift_reason="")

    assert asked.status_code == refused.status_code == 200
    assert 'name="lift_reason"' in asked.content.decode()
    assert "This field is required" in refused.content.decode()
    assert Suppression.objects.filter(pk=manual.pk).exists()
    assert not SuppressionLift.objects.exists()


def test_the_admin_lifts_with_the_reason_and_keeps_a_record(client, superuser):
    manual = suppression_add(email="x@example.com", reason=Reason.MANUAL, source="admin")
    client.force_login(superuser)

    response = lift_in_admin(client, manual, lift_reason="Added to the wrong contact.")

    assert "Lifted 1 suppression" in response.content.decode()
    assert not Suppression.objects.exists()
    lift = SuppressionLift.objects.get()
    assert (lift.email_hash, lift.reason, lift.via, lift.lifted_by, lift.note) == (
        email_hash("x@example.com"),
        Reason.MANUAL,
        SuppressionLift.Via.STAFF,
        superuser,
        "Added to the wrong contact.",
    )
    listed = client.get("/admin/crm/suppressionlift/", {"q": "X@example.com"})
    assert "Added to the wrong contact." in listed.content.decode()


@pytest.mark.parametrize("reason", [Reason.UNSUBSCRIBED, Reason.COMPLAINT, Reason.ERASED])
def test_not_even_a_superuser_lifts_an_objection(client, superuser, reason):
    objection = suppression_add(email="x@example.com", reason=reason, source="preference centre")
    client.force_login(superuser)

    response = lift_in_admin(client, objection, lift_reason="The customer phoned to ask.")

    assert "only their own new consent" in response.content.decode()
    assert Suppression.objects.filter(pk=objection.pk).exists()
    assert not SuppressionLift.objects.exists()


def test_marketing_may_add_and_read_but_not_lift(client, marketer):
    manual = suppression_add(email="x@example.com", reason=Reason.MANUAL, source="admin")
    client.force_login(marketer)

    lift_in_admin(client, manual, lift_reason="Added to the wrong contact.")

    assert Suppression.objects.filter(pk=manual.pk).exists()
    assert client.get("/admin/crm/suppressionlift/").status_code == 200


def test_the_database_refuses_to_rewrite_a_lift():
    lift = SuppressionLiftFactory()

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE crm_suppressionlift SET note = 'rewritten'")

    lift.refresh_from_db()
    assert lift.note != "rewritten"


@pytest.mark.parametrize("reason", [Reason.UNSUBSCRIBED, Reason.COMPLAINT, Reason.ERASED])
def test_the_database_refuses_a_staff_lift_of_an_objection(reason):
    with pytest.raises(IntegrityError), transaction.atomic():
        SuppressionLiftFactory(reason=reason, lifted_by=UserFactory())


def test_the_database_refuses_a_lift_without_a_reason():
    with pytest.raises(IntegrityError), transaction.atomic():
        SuppressionLiftFactory(note="")
