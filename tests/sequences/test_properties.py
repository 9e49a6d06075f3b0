"""Property test: whatever happens in whatever order, no email to a suppressed or
non-consented contact, and no (enrollment, step) handed to the ESP twice."""

import collections

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import ConsentEntry
from crm.services import activity_record, consent_grant, consent_withdraw, suppression_add
from tests.factories import ConsentEntryFactory, ContactFactory
from tests.sequences import backends
from tests.sequences.conftest import START, build_sequence, email_step, run, step

CONTACTS = 3
contact_index = st.integers(0, CONTACTS - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("trigger"), contact_index),
        st.tuples(st.just("grant"), contact_index),
        st.tuples(st.just("withdraw"), contact_index),
        st.tuples(st.just("withdraw_silently"), contact_index),
        st.tuples(st.just("suppress"), contact_index),
        st.tuples(st.just("buy"), contact_index),
        st.tuples(st.just("advance"), st.integers(1, 60)),
        st.tuples(st.just("run"), st.just(0)),
    ),
    max_size=30,
)


def apply(operation, contacts, topic, clock):
    name, value = operation
    contact = contacts[value] if name not in ("advance", "run") else None
    if name == "trigger":
        activity_record(kind="form_submitted", source="test", contact=contact)
    elif name == "grant":
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    elif name == "withdraw":
        consent_withdraw(contact=contact, topic=topic, method="admin", source="test")
    elif name == "withdraw_silently":
        # A ledger row without the activity: only the gate can catch this one.
        ConsentEntryFactory(contact=contact, topic=topic, is_granted=False)
    elif name == "suppress":
        suppression_add(email=contact.email, reason="manual", source="test")
    elif name == "buy":
        activity_record(kind="order_placed", source="test", contact=contact)
    elif name == "advance":
        clock.advance(hours=value)
    else:
        run(clock)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=operations)
def test_no_email_to_the_unwilling_and_no_step_twice(settings, clock, newsletter, operations):
    settings.EMAIL_BACKEND = "tests.sequences.backends.GuardedBackend"
    backends.HANDED.clear()
    backends.VIOLATIONS.clear()
    clock.now = START
    with transaction.atomic():
        contacts = [ContactFactory(country="DE") for _ in range(CONTACTS)]
        build_sequence(
            [
                email_step("one"),
                step("w1", "wait_duration", duration={"hours": 5}),
                email_step("two"),
                step("w2", "wait_duration", duration={"hours": 20}),
                email_step("three"),
            ],
            goal_conditions=[{"activity": "order_placed"}],
            reenrollment="always",
        )

        for operation in operations:
            apply(operation, contacts, newsletter, clock)
        clock.advance(days=3)
        run(clock)

        assert backends.VIOLATIONS == []
        repeated = [key for key, n in collections.Counter(backends.HANDED).items() if n > 1]
        assert repeated == []
        assert ConsentEntry.objects.count() >= 0
        transaction.set_rollback(True)
