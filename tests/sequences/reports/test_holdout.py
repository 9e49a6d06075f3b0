"""The holdout group: stable assignment, never mailed, and the lift with its interval."""

import math

import pytest
from django.core import mail
from django.db.models import Q

from sequences.models import Enrollment, OutboundMessage
from sequences.reports.holdout import holdout_bucket, is_held_out
from sequences.reports.models import EnrollmentFact
from sequences.reports.selectors import sequence_results
from sequences.reports.stats import Sample, conversion_lift, revenue_lift
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


def welch(mailed: list[float], holdout: list[float]) -> tuple[float, float, float]:
    """Welch's difference of means and its 95% interval, written out for the checks below."""
    from scipy.stats import t

    def mean_var(values):
        mean = sum(values) / len(values)
        return mean, sum((v - mean) ** 2 for v in values) / (len(values) - 1)

    (m1, v1), (m0, v0) = mean_var(mailed), mean_var(holdout)
    n1, n0 = len(mailed), len(holdout)
    se = math.sqrt(v1 / n1 + v0 / n0)
    dof = (v1 / n1 + v0 / n0) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v0 / n0) ** 2 / (n0 - 1))
    half = t.ppf(0.975, dof) * se
    return m1 - m0, m1 - m0 - half, m1 - m0 + half


def test_revenue_per_contact_lift_matches_welchs_interval_computed_by_hand():
    mailed = [0.0] * 7 + [50.0, 80.0, 120.0]
    holdout = [0.0] * 7 + [60.0]
    difference, low, high = welch(mailed, holdout)

    lift = revenue_lift(
        Sample(len(mailed), sum(mailed), sum(v * v for v in mailed)),
        Sample(len(holdout), sum(holdout), sum(v * v for v in holdout)),
    )

    assert lift.difference == pytest.approx(difference) == pytest.approx(17.5)
    assert (lift.low, lift.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert not lift.is_significant


def test_a_clear_revenue_lift_is_significant_and_no_spread_gives_none():
    lift = revenue_lift(Sample(1000, 30_000.0, 3_000_000.0), Sample(100, 100.0, 10_000.0))
    assert lift.low > 0 and lift.is_significant

    assert revenue_lift(Sample(10, 0.0, 0.0), Sample(5, 0.0, 0.0)) is None
    assert revenue_lift(Sample(10, 5.0, 25.0), Sample(1, 0.0, 0.0)) is None


@pytest.mark.django_db
def test_the_report_gives_welchs_revenue_interval_over_the_recorded_orders(
    clock, newsletter, django_capture_on_commit_callbacks
):
    """Orders, a second order and a refund flow through the facts into sums and squares."""
    from crm.services import activity_record

    sequence = build_sequence([email_step("hello")], key="lift", holdout_percent=50)
    contacts = ContactFactory.create_batch(16)
    for contact in contacts:
        ConsentEntryFactory(contact=contact, topic=newsletter, occurred_at=clock.now)

    def record(contact, kind, **properties):
        with django_capture_on_commit_callbacks(execute=True):
            activity_record(kind=kind, source="test", contact=contact, properties=properties)

    for contact in contacts:
        record(contact, "form_submitted")
    clock.advance(hours=2)
    held = [c for c in contacts if is_held_out(sequence_key="lift", contact_id=c.pk, percent=50)]
    kept = [c for c in contacts if c not in held]
    assert len(held) >= 2 and len(kept) >= 3
    # Both groups, no revenue yet: nothing to compare (Welch needs some spread).
    before = sequence_results(sequence=sequence)["holdout"]["revenue_lift"]
    assert before == {"status": "no revenue yet", "is_significant": False}
    revenue = {c.pk: 0.0 for c in contacts}
    for number, (contact, total) in enumerate(
        [(kept[0], 40.0), (kept[1], 25.5), (kept[2], 90.0), (held[0], 10.0)]
    ):
        record(contact, "order_placed", order_id=f"o{number}", total=str(total), currency="EUR")
        revenue[contact.pk] += total
    # A second order adds to the contact's revenue (its square is of the sum, not each order)...
    record(kept[0], "order_placed", order_id="o-again", total="15.00", currency="EUR")
    revenue[kept[0].pk] += 15.0
    # ...and a refund takes an order back out.
    record(kept[1], "order_refunded", order_id="o1")
    revenue[kept[1].pk] = 0.0
    difference, low, high = welch([revenue[c.pk] for c in kept], [revenue[c.pk] for c in held])

    money = sequence_results(sequence=sequence)["holdout"]["revenue_lift"]

    assert money["difference"] == pytest.approx(difference, abs=1e-4)
    assert (money["low"], money["high"]) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )
    assert money["status"] == "not yet significant"


@pytest.mark.django_db
def test_the_migration_backfills_the_squares_and_months_the_writers_keep(mailed, record, clock):
    """Counters written before the squares and month rows existed get them, set-based."""
    import importlib
    from types import SimpleNamespace

    from django.db import connection
    from django.db.migrations.state import ProjectState

    from sequences.reports.models import ReportCount

    sequence, contact, _ = mailed
    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")
    record(contact, "order_placed", order_id="A2", total="12.50", currency="EUR")
    fields = ("span", "day", "sequence_pk", "version_pk", "cohort", "metric", "count")
    live = sorted(ReportCount.objects.values_list(*fields, "amount_minor"))
    squares = [row for row in live if row[5] == "cohort_revenue_sq"]
    assert [row[-1] for row in squares] == [4250**2, 4250**2]  # its day and its month
    ReportCount.objects.filter(Q(span="m") | Q(metric="cohort_revenue_sq")).delete()

    migration = importlib.import_module(
        "sequences.reports.migrations.0003_report_months_and_squares"
    )
    # The backfills only need the editor's connection (SQLite refuses a real schema
    # editor inside the test's transaction).
    editor = SimpleNamespace(connection=connection)
    migration.squares_backfill(ProjectState().apps, editor)
    migration.months_from_days(ProjectState().apps, editor)

    assert sorted(ReportCount.objects.values_list(*fields, "amount_minor")) == live
