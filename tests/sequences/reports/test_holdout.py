"""The holdout group: stable assignment, never mailed, and the lift with its interval."""

import math

import pytest
from django.core import mail

from sequences.models import Enrollment, OutboundMessage
from sequences.reports.holdout import holdout_bucket, is_held_out
from sequences.reports.models import EnrollmentFact
from sequences.reports.selectors import sequence_results
from sequences.reports.stats import conversion_lift
from tests.factories import ConsentEntryFactory, ContactFactory
from tests.sequences.conftest import build_sequence, email_step, step


def test_assignment_is_a_stable_function_of_sequence_key_and_contact():
    first = [is_held_out(sequence_key="welcome", contact_id=pk, percent=10) for pk in range(2000)]
    again = [is_held_out(sequence_key="welcome", contact_id=pk, percent=10) for pk in range(2000)]

    assert first == again
    # Pinned: changing the hash would reshuffle every running holdout mid-experiment.
    assert holdout_bucket(sequence_key="welcome", contact_id=42) == 2696
    assert 150 <= sum(first) <= 250  # about 10%


def test_raising_the_share_keeps_everyone_already_held_out():
    at_10 = {pk for pk in range(3000) if is_held_out(sequence_key="s", contact_id=pk, percent=10)}
    at_20 = {pk for pk in range(3000) if is_held_out(sequence_key="s", contact_id=pk, percent=20)}

    assert at_10 < at_20


def test_share_is_capped_at_50_percent_and_zero_holds_out_no_one():
    held = [is_held_out(sequence_key="s", contact_id=pk, percent=90) for pk in range(2000)]

    assert 900 <= sum(held) <= 1100
    assert not any(is_held_out(sequence_key="s", contact_id=pk, percent=0) for pk in range(500))


def test_new_sequences_hold_out_the_configured_default(db, settings):
    settings.REPORT_DEFAULT_HOLDOUT_PERCENT = 10

    sequence = build_sequence([email_step("hello")], activate=False)

    assert sequence.holdout_percent == 10


@pytest.mark.django_db
def test_holdout_contacts_are_enrolled_but_never_mailed_and_the_ledger_says_why(
    clock, newsletter, django_capture_on_commit_callbacks
):
    from crm.services import activity_record

    sequence = build_sequence(
        [
            email_step("hello"),
            step("pause", "wait_duration", duration={"days": 1}),
            email_step("b"),
        ],
        key="lift",
        holdout_percent=50,
    )
    contacts = ContactFactory.create_batch(12)
    for contact in contacts:
        ConsentEntryFactory(contact=contact, topic=newsletter, occurred_at=clock.now)
    held = {c.pk for c in contacts if is_held_out(sequence_key="lift", contact_id=c.pk, percent=50)}
    assert 0 < len(held) < len(contacts)

    with django_capture_on_commit_callbacks(execute=True):
        for contact in contacts:
            activity_record(kind="form_submitted", source="test", contact=contact)
    clock.advance(days=1, minutes=1)
    from tests.sequences.conftest import run

    run(clock)

    mailed_to = {message.to[0] for message in mail.outbox}
    assert mailed_to == {c.email for c in contacts if c.pk not in held}
    skipped = OutboundMessage.objects.filter(contact_id__in=held)
    assert skipped.count() == 2 * len(held)
    assert set(skipped.values_list("state", "reason")) == {("skipped", "holdout")}
    # They walk the whole sequence, like the mailed group, so goals compare fairly.
    assert set(Enrollment.objects.filter(contact_id__in=held).values_list("state", flat=True)) == {
        "completed"
    }
    assert (
        set(EnrollmentFact.objects.filter(is_holdout=True).values_list("contact_id", flat=True))
        == held
    )
    holdout = sequence_results(sequence=sequence)["holdout"]
    assert holdout["holdout"]["contacts"] == len(held)
    assert holdout["mailed"]["contacts"] == len(contacts) - len(held)


@pytest.mark.django_db
def test_transactional_mail_is_never_held_out(clock):
    sequence = build_sequence([email_step("receipt")], is_transactional=True, holdout_percent=50)
    from sequences.gate import evaluate

    held = [
        c
        for c in ContactFactory.create_batch(10)
        if is_held_out(sequence_key=sequence.key, contact_id=c.pk, percent=50)
    ]

    decisions = {evaluate(c, sequence, {"key": "receipt"}, clock.now).reason for c in held}
    assert held and "holdout" not in decisions


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval, written out by hand for the check below."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_lift_and_its_interval_match_newcombes_method_computed_by_hand():
    # 120 of 1,000 mailed converted, 8 of 100 held out.
    l1, u1 = wilson(120, 1000)
    l0, u0 = wilson(8, 100)
    d = 0.12 - 0.08
    low = d - math.sqrt((0.12 - l1) ** 2 + (u0 - 0.08) ** 2)
    high = d + math.sqrt((u1 - 0.12) ** 2 + (0.08 - l0) ** 2)

    lift = conversion_lift(mailed_converted=120, mailed=1000, holdout_converted=8, holdout=100)

    assert lift.difference == pytest.approx(0.04)
    assert (lift.low, lift.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert lift.relative == pytest.approx(0.5)
    assert not lift.is_significant  # the interval holds 0: "not yet significant"


def test_a_clear_lift_is_significant():
    lift = conversion_lift(mailed_converted=300, mailed=1000, holdout_converted=10, holdout=100)

    assert lift.low > 0 and lift.is_significant and lift.p_value < 0.001


def test_no_holdout_group_gives_no_lift():
    assert conversion_lift(mailed_converted=3, mailed=10, holdout_converted=0, holdout=0) is None


def test_the_holdout_is_configuration_as_code_and_an_older_file_keeps_it(db):
    from crm.config_io import config_export, config_import
    from sequences.models import Sequence

    sequence = build_sequence([email_step("hello")])
    Sequence.objects.filter(pk=sequence.pk).update(holdout_percent=20)

    exported = config_export()
    assert "holdout_percent: 20" in exported
    config_import(exported.replace("holdout_percent: 20", "holdout_percent: 30"))
    assert Sequence.objects.get(pk=sequence.pk).holdout_percent == 30
    # A file written before holdouts existed says nothing: the running share stays.
    config_import(exported.replace("    holdout_percent: 20\n", ""))
    assert Sequence.objects.get(pk=sequence.pk).holdout_percent == 30
