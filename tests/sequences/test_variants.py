"""A/B variants of email steps: assignment, the ledger's variant, the automatic winner."""

import pytest
from django.core.exceptions import ValidationError

from crm.models import Activity
from sequences.conditions import step_config_errors
from sequences.models import Enrollment, OutboundMessage
from sequences.services import enrollment_create, variant_winners_decide
from sequences.services.variants import VariantStats, variant_winner_pick, variants_bucket
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    EmailTemplateFactory,
    EnrollmentFactory,
    OutboundMessageFactory,
)
from tests.sequences.conftest import build_sequence, email_step, run, sent_to

pytestmark = pytest.mark.django_db

HALVES = [
    {"key": "a", "template": "hello-a", "split": 50},
    {"key": "b", "template": "hello-b", "split": 50},
]


@pytest.fixture
def ab_sequence(db):
    EmailTemplateFactory(key="hello-a", subject="Subject A")
    EmailTemplateFactory(key="hello-b", subject="Subject B")

    def build(winner_by="click"):
        return build_sequence(
            [email_step("hello", variants=HALVES, winner_by=winner_by)], key=f"ab-{winner_by}"
        )

    return build


def test_assignment_is_stable_and_follows_the_split():
    variants = [{"key": "a", "split": 20}, {"key": "b", "split": 80}]

    picks = [variants_bucket(variants, f"{pk}:hello")["key"] for pk in range(2000)]

    assert picks == [variants_bucket(variants, f"{pk}:hello")["key"] for pk in range(2000)]
    assert 300 < picks.count("a") < 500


def test_each_send_records_its_variant_and_uses_its_template(clock, ab_sequence, newsletter):
    sequence = ab_sequence()
    contacts = [ContactFactory(country="US") for _ in range(12)]

    for contact in contacts:
        enrollment_create(contact=contact, sequence=sequence, now=clock.now)

    run(clock)

    rows = OutboundMessage.objects.filter(state="sent")
    assert rows.count() == 12
    assert {row.variant for row in rows} == {"a", "b"}
    for row in rows:
        [message] = sent_to(row.contact.email)
        assert message.subject == f"Subject {row.variant.upper()}"


@pytest.mark.parametrize(
    ("successes", "sent", "winner"),
    [
        ((30, 10), (100, 100), "a"),
        ((12, 10), (100, 100), ""),
        ((30, 10), (99, 100), ""),
        # Near the line, checked by hand (pooled z): 22 vs 10 of 100 gives z = 0.12 /
        # sqrt(0.16 x 0.84 x 0.02) = 2.31 > 1.96; 19 vs 10 gives z = 1.81 < 1.96.
        ((22, 10), (100, 100), "a"),
        ((19, 10), (100, 100), ""),
        ((10, 22), (100, 100), "b"),
        # Every send succeeded in both: no spread, no winner.
        ((100, 100), (100, 100), ""),
    ],
)
def test_winner_needs_significance_and_the_minimum_sample(successes, sent, winner):
    stats = [
        VariantStats("a", sent=sent[0], successes=successes[0]),
        VariantStats("b", sent=sent[1], successes=successes[1]),
    ]

    assert variant_winner_pick(stats) == winner


def sends(sequence, variant: str, count: int, converted: int = 0, clicked: int = 0):
    for index in range(count):
        state = Enrollment.State.CONVERTED if index < converted else Enrollment.State.COMPLETED
        enrollment = EnrollmentFactory(version=sequence.current_version, state=state)
        row = OutboundMessageFactory(enrollment=enrollment, step="hello", variant=variant)
        if index < clicked:
            ActivityFactory(
                contact=enrollment.contact,
                kind=Activity.Kind.EMAIL_CLICKED,
                properties={"message_uuid": str(row.uuid)},
            )


def test_goal_rate_winner_is_used_for_every_new_send(clock, ab_sequence):
    sequence = ab_sequence("goal")
    sends(sequence, "a", 100, converted=10)
    sends(sequence, "b", 100, converted=30)

    decided = variant_winners_decide()

    sequence.refresh_from_db()
    assert decided == 1
    assert sequence.variant_winners == {"hello": "b"}
    contacts = [ContactFactory(country="US") for _ in range(6)]
    for contact in contacts:
        enrollment_create(contact=contact, sequence=sequence, now=clock.now)

    run(clock)
    fresh = OutboundMessage.objects.filter(contact__in=contacts)
    assert set(fresh.values_list("variant", flat=True)) == {"b"}


def test_click_rate_winner(ab_sequence):
    sequence = ab_sequence("click")
    sends(sequence, "a", 100, clicked=40)
    sends(sequence, "b", 100, clicked=15)

    variant_winners_decide()

    sequence.refresh_from_db()
    assert sequence.variant_winners == {"hello": "a"}


@pytest.mark.parametrize(
    "variants",
    [
        [{"key": "a", "template": "x", "split": 50}],
        [{"key": "a", "template": "x", "split": 50}, {"key": "b", "template": "y", "split": 40}],
        [{"key": "a", "template": "x", "split": 50}, {"key": "a", "template": "y", "split": 50}],
        [{"key": "a", "template": "x"}, {"key": "b", "template": "y"}],
    ],
)
def test_invalid_variants_are_refused(variants):
    assert step_config_errors("send_email", {"variants": variants})


def test_activation_is_refused_while_a_variant_template_is_missing(db):
    EmailTemplateFactory(key="hello-a")
    variants = [
        {"key": "a", "template": "hello-a", "split": 50},
        {"key": "b", "template": "nowhere", "split": 50},
    ]

    with pytest.raises(ValidationError, match="variant b: there is no template 'nowhere'"):
        build_sequence([email_step("hello", variants=variants)])


def test_a_step_may_decide_on_a_smaller_sample_but_never_below_twenty():
    variants = [
        {"key": "a", "template": "x", "split": 50},
        {"key": "b", "template": "y", "split": 50},
    ]
    stats = [VariantStats("a", sent=25, successes=2), VariantStats("b", sent=25, successes=15)]

    assert variant_winner_pick(stats) == ""
    assert variant_winner_pick(stats, min_sample=25) == "b"
    assert not step_config_errors("send_email", {"variants": variants, "min_sample": 20})
    for too_small in (19, 0, "20", 20.5):
        assert step_config_errors("send_email", {"variants": variants, "min_sample": too_small})
