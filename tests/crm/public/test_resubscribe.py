"""The person's own new consent lifts their own "no": unsubscribe from all and the sunset.

Issue 9, finding 15: a contact suppressed `inactive` by the sunset policy who later
confirmed a double opt-in stayed refused forever. Fresh, proven consent lifts that
suppression (and only the kinds that are theirs to lift), recorded in the consent
ledger and in the append-only record of lifts.
"""

import datetime
import re

import pytest
from django.core import mail
from django.utils import timezone

from crm.emails import email_hash
from crm.links import preferences_token
from crm.models import ConsentEntry, ConsentTopic, Suppression, SuppressionLift
from crm.selectors import suppressions_active_for
from crm.services import suppression_add
from sequences.esp.sunset import SOURCE as SUNSET_SOURCE
from sequences.gate import evaluate
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db
Reason = Suppression.Reason


def sunset(contact) -> Suppression:
    return suppression_add(email=contact.email, reason=Reason.INACTIVE, source=SUNSET_SOURCE)


def sign_up_and_confirm(client, email: str) -> None:
    client.post("/subscribe/", {"email": email, "first_name": "Ada", "topic": "newsletter"})
    [message] = mail.outbox
    path = re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", message.body).group(1)
    assert client.post(path, REMOTE_ADDR="203.0.113.9").status_code == 200


def test_a_confirmed_opt_in_lifts_the_sunset_and_records_why(client, subscriber):
    sunset(subscriber)
    granted_before = ConsentEntry.objects.filter(contact=subscriber).count()

    sign_up_and_confirm(client, subscriber.email)

    assert not suppressions_active_for(email=subscriber.email).exists()
    # The fresh proof is appended even though the topic was granted already.
    entry = ConsentEntry.objects.filter(contact=subscriber).latest("pk")
    assert ConsentEntry.objects.filter(contact=subscriber).count() == granted_before + 1
    assert (entry.method, entry.is_granted, entry.ip_address) == (
        ConsentEntry.Method.DOUBLE_OPT_IN,
        True,
        "203.0.113.9",
    )
    lift = SuppressionLift.objects.get()
    assert (lift.email_hash, lift.reason, lift.via) == (
        email_hash(subscriber.email),
        Reason.INACTIVE,
        SuppressionLift.Via.OWN_CONSENT,
    )
    assert lift.consent_entry_pk == entry.pk and lift.lifted_by is None
    assert lift.suppression_source == SUNSET_SOURCE
    sequence = build_sequence([email_step("hello")], trigger=None)
    assert evaluate(subscriber, sequence, {"config": {}}, timezone.now()).reason != "suppressed"


def test_consent_lifts_only_the_persons_own_suppressions(client, subscriber):
    sunset(subscriber)
    cool_down = timezone.now() + datetime.timedelta(days=30)
    suppression_add(
        email=subscriber.email, reason=Reason.SOFT_BOUNCE, source="esp", expires_at=cool_down
    )

    # A soft-bounce cool-down stops even the confirmation request: nothing to confirm.
    client.post("/subscribe/", {"email": subscriber.email, "topic": "newsletter"})
    assert mail.outbox == []
    Suppression.objects.filter(reason=Reason.SOFT_BOUNCE).update(expires_at=timezone.now())
    sign_up_and_confirm(client, subscriber.email)

    left = set(Suppression.objects.values_list("reason", flat=True))
    assert left == {Reason.SOFT_BOUNCE}  # ended, not lifted: the record shows the bounces
    assert list(SuppressionLift.objects.values_list("reason", flat=True)) == [Reason.INACTIVE]


def test_saving_the_preference_centre_with_a_topic_lifts_the_sunset(client, subscriber):
    sunset(subscriber)

    client.post(f"/preferences/{preferences_token(subscriber)}/", {"topics": ["newsletter"]})

    assert not Suppression.objects.exists()
    lift = SuppressionLift.objects.get()
    entry = ConsentEntry.objects.get(pk=lift.consent_entry_pk)
    assert entry.method == ConsentEntry.Method.PREFERENCE_CENTRE and entry.is_granted
    assert entry.topic == ConsentTopic.objects.get(key="newsletter")


def test_leaving_every_topic_unticked_lifts_nothing(client, subscriber):
    sunset(subscriber)

    client.post(f"/preferences/{preferences_token(subscriber)}/", {"topics": []})

    assert Suppression.objects.get().reason == Reason.INACTIVE
    assert not SuppressionLift.objects.exists()


def test_resubscribing_after_unsubscribe_all_is_recorded_as_the_persons_lift(client, subscriber):
    client.post(f"/preferences/{preferences_token(subscriber)}/", {"unsubscribe_all": "on"})

    client.post(f"/preferences/{preferences_token(subscriber)}/", {"topics": ["newsletter"]})

    lift = SuppressionLift.objects.get()
    assert (lift.reason, lift.via) == (Reason.UNSUBSCRIBED, SuppressionLift.Via.OWN_CONSENT)
    assert "Preference centre" in lift.note


@pytest.mark.parametrize("reason", [Reason.COMPLAINT, Reason.ERASED, Reason.HARD_BOUNCE])
def test_a_complaint_erasure_or_hard_bounce_is_never_lifted_by_signing_up(
    client, subscriber, reason
):
    suppression_add(email=subscriber.email, reason=reason, source="esp")

    client.post("/subscribe/", {"email": subscriber.email, "topic": "newsletter"})

    assert mail.outbox == []
    assert Suppression.objects.get().reason == reason
    assert not SuppressionLift.objects.exists()
