"""One factory per model. Factories write rows directly; tests of behaviour call services."""

import datetime
import hashlib

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from factory.django import DjangoModelFactory

from crm.emails import email_hash
from crm.models import (
    Activity,
    ApiKey,
    Company,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStage,
    LifecycleStageChange,
    Note,
    Segment,
    SegmentCountSnapshot,
    SegmentMembership,
    Suppression,
    SuppressionLift,
    Tag,
    Task,
)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@nextstep.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        if create:
            self.save()


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Faker("company")
    domain = factory.Sequence(lambda n: f"company{n}.example")
    size = Company.Size.SMALL
    industry = "Software"


class LifecycleStageFactory(DjangoModelFactory):
    class Meta:
        model = LifecycleStage
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"stage_{n}")
    name = factory.LazyAttribute(lambda stage: stage.key.replace("_", " ").capitalize())
    position = factory.Sequence(lambda n: 100 + n)


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "DE"
    country_source = Contact.CountrySource.DECLARED
    time_zone = "Europe/Berlin"
    lifecycle_stage_id = LifecycleStage.Key.NEW_LEAD.value
    # As if staff had added them: the send gate refuses addresses nobody vouched for.
    vouched_at = factory.LazyFunction(timezone.now)
    vouched_by = Contact.VouchedBy.STAFF


class LifecycleStageChangeFactory(DjangoModelFactory):
    class Meta:
        model = LifecycleStageChange

    contact = factory.SubFactory(ContactFactory)
    from_stage_id = LifecycleStage.Key.NEW_LEAD.value
    to_stage_id = LifecycleStage.Key.ENGAGED_LEAD.value
    source = "test"
    changed_at = factory.LazyFunction(timezone.now)


class ConsentTopicFactory(DjangoModelFactory):
    class Meta:
        model = ConsentTopic
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.LazyAttribute(lambda topic: topic.key.title())


class ConsentTextFactory(DjangoModelFactory):
    class Meta:
        model = ConsentText

    topic = factory.SubFactory(ConsentTopicFactory)
    version = factory.Sequence(lambda n: n + 1)
    text = factory.LazyAttribute(lambda text: f"Yes, email me about {text.topic.name}.")


class ConsentEntryFactory(DjangoModelFactory):
    class Meta:
        model = ConsentEntry

    contact = factory.SubFactory(ContactFactory)
    topic = factory.SubFactory(ConsentTopicFactory)
    is_granted = True
    email_at_time = factory.LazyAttribute(lambda entry: entry.contact.email)
    method = ConsentEntry.Method.FORM
    source = "test form"
    occurred_at = factory.LazyFunction(timezone.now)


class SuppressionFactory(DjangoModelFactory):
    class Meta:
        model = Suppression

    email = factory.Sequence(lambda n: f"suppressed{n}@example.com")
    email_hash = factory.LazyAttribute(lambda suppression: email_hash(suppression.email))
    reason = Suppression.Reason.MANUAL
    source = "test"


class SuppressionLiftFactory(DjangoModelFactory):
    class Meta:
        model = SuppressionLift

    email_hash = factory.Sequence(lambda n: email_hash(f"lifted{n}@example.com"))
    reason = Suppression.Reason.MANUAL
    suppression_source = "test"
    suppressed_at = factory.LazyFunction(timezone.now)
    via = SuppressionLift.Via.STAFF
    note = "Added to the wrong address by mistake."
    lifted_by = factory.SubFactory(UserFactory)
    lifted_at = factory.LazyFunction(timezone.now)


class DealStageFactory(DjangoModelFactory):
    class Meta:
        model = DealStage
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"deal-stage-{n}")
    name = factory.LazyAttribute(lambda stage: stage.key.title())
    position = factory.Sequence(lambda n: 100 + n)
    win_probability = 30


class DealFactory(DjangoModelFactory):
    class Meta:
        model = Deal

    name = factory.Sequence(lambda n: f"Deal {n}")
    contact = factory.SubFactory(ContactFactory)
    stage = factory.LazyFunction(lambda: DealStage.objects.get(key="qualification"))
    amount = 1000
    currency = "EUR"
    expected_close_on = factory.LazyFunction(
        lambda: timezone.localdate() + datetime.timedelta(days=30)
    )


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    kind = Activity.Kind.PAGE_VIEWED
    contact = factory.SubFactory(ContactFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    source = "test"
    properties = factory.LazyFunction(lambda: {"path": "/"})


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Call back #{n}")
    contact = factory.SubFactory(ContactFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=1))


class NoteFactory(DjangoModelFactory):
    class Meta:
        model = Note

    contact = factory.SubFactory(ContactFactory)
    body = factory.Faker("sentence")


class ApiKeyFactory(DjangoModelFactory):
    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"Key {n}")
    kind = ApiKey.Kind.SERVER
    prefix = factory.Sequence(lambda n: f"k{n:07d}")
    key_hash = factory.Sequence(lambda n: hashlib.sha256(f"key-{n}".encode()).hexdigest())


# --- scoring ----------------------------------------------------------------------------------
# Imported here, not at the top, so this block can be appended without touching crm's.

from scoring.models import (  # noqa: E402
    Handoff,
    HandoffRule,
    RoundRobinPointer,
    ScoreChange,
    ScoringRule,
    Territory,
)


class ScoringRuleFactory(DjangoModelFactory):
    class Meta:
        model = ScoringRule
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"rule-{n}")
    name = factory.LazyAttribute(lambda rule: rule.key.replace("-", " ").capitalize())
    category = ScoringRule.Category.ENGAGEMENT
    activity_kind = Activity.Kind.PAGE_VIEWED
    points = 10


# A function named like the factory it replaced, so tests read the same.
def ScoringConditionFactory(
    *, rule: ScoringRule | None = None, field="path", operator="contains", value="/pricing"
) -> dict:
    """Add one condition, written in the old scoring words, to the rule's "all of" tree.

    Rules keep their conditions as one tree (crm.conditions) since scoring migration
    0007; tests that think in (field, operator, value) rows still read naturally.
    """
    from crm.conditions.legacy import scoring_row_to_condition

    rule = rule or ScoringRuleFactory()
    condition, _notes = scoring_row_to_condition(field, operator, value, category=rule.category)
    tree = rule.conditions or {"match": "all", "conditions": []}
    tree["conditions"].append(condition)
    rule.conditions = tree
    rule.save(update_fields=["conditions"])
    return condition


class ScoreChangeFactory(DjangoModelFactory):
    class Meta:
        model = ScoreChange

    contact = factory.SubFactory(ContactFactory)
    rule = factory.SubFactory(ScoringRuleFactory)
    activity = factory.SubFactory(ActivityFactory, contact=factory.SelfAttribute("..contact"))
    part = ScoreChange.Part.ENGAGEMENT
    reason = ScoreChange.Reason.ACTIVITY
    points = 10
    occurred_at = factory.LazyFunction(timezone.now)


class HandoffRuleFactory(DjangoModelFactory):
    class Meta:
        model = HandoffRule
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"handoff-rule-{n}")
    name = factory.LazyAttribute(lambda rule: rule.key.replace("-", " ").capitalize())
    score_threshold = 50


class HandoffFactory(DjangoModelFactory):
    class Meta:
        model = Handoff

    contact = factory.SubFactory(ContactFactory)
    rule = factory.SubFactory(HandoffRuleFactory)
    score = 60
    engagement_score = 40
    fit_score = 20
    reasons = factory.LazyFunction(
        lambda: [{"type": "score", "label": "+40 Pricing page viewed", "points": 40}]
    )
    sla_due_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(minutes=30))


class TerritoryFactory(DjangoModelFactory):
    class Meta:
        model = Territory
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"territory-{n}")
    name = factory.LazyAttribute(lambda territory: territory.key.title())
    countries = "DE, AT, CH"


class RoundRobinPointerFactory(DjangoModelFactory):
    class Meta:
        model = RoundRobinPointer
        django_get_or_create = ("pool",)

    pool = factory.Sequence(lambda n: f"pool-{n}")


# --- sequences --------------------------------------------------------------------------------

from sequences.models import (  # noqa: E402
    CircuitBreakerTrip,
    EmailTemplate,
    Enrollment,
    EnrollmentEvent,
    EspEvent,
    OutboundMessage,
    Sequence,
    SequenceVersion,
    Step,
    Trigger,
)

MARKETING_HTML = (
    '<p>Hi {{ contact.first_name|default:"there" }},</p>'
    '<p><a href="{{ cta_url }}">{{ cta_label }}</a></p>'
    '<p>{{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


class EmailTemplateFactory(DjangoModelFactory):
    class Meta:
        model = EmailTemplate

    key = factory.Sequence(lambda n: f"template-{n}")
    name = factory.LazyAttribute(lambda template: template.key.title())
    subject = "A next step for you"
    html = MARKETING_HTML
    cta_label = "Take the next step"
    cta_url = "https://www.example.com/next"
    is_marketing = True


class SequenceFactory(DjangoModelFactory):
    class Meta:
        model = Sequence

    key = factory.Sequence(lambda n: f"sequence-{n}")
    name = factory.LazyAttribute(lambda sequence: sequence.key.title())
    owner = factory.SubFactory(UserFactory)
    topic = factory.LazyFunction(lambda: ConsentTopic.objects.get(key="newsletter"))
    on_send_failure = Sequence.OnSendFailure.CONTINUE


class SequenceResultFactory(SequenceFactory):
    """The revenue view's read-only proxy of a sequence (sequences/reports/admin.py)."""

    class Meta:
        model = "revenue.SequenceResult"


class SequenceVersionFactory(DjangoModelFactory):
    class Meta:
        model = SequenceVersion

    sequence = factory.SubFactory(SequenceFactory)
    number = factory.Sequence(lambda n: n + 1)
    steps = factory.LazyFunction(list)


class StepFactory(DjangoModelFactory):
    class Meta:
        model = Step

    sequence = factory.SubFactory(SequenceFactory)
    position = factory.Sequence(lambda n: n)
    key = factory.Sequence(lambda n: f"step-{n}")
    type = Step.Type.SEND_EMAIL
    template = factory.SubFactory(EmailTemplateFactory)


class TriggerFactory(DjangoModelFactory):
    class Meta:
        model = Trigger

    sequence = factory.SubFactory(SequenceFactory)
    type = Trigger.Type.ACTIVITY
    activity_kind = Activity.Kind.FORM_SUBMITTED


class EnrollmentFactory(DjangoModelFactory):
    class Meta:
        model = Enrollment

    contact = factory.SubFactory(ContactFactory)
    version = factory.SubFactory(SequenceVersionFactory)
    sequence = factory.LazyAttribute(lambda enrollment: enrollment.version.sequence)
    enrolled_at = factory.LazyFunction(timezone.now)


class EnrollmentEventFactory(DjangoModelFactory):
    class Meta:
        model = EnrollmentEvent

    enrollment = factory.SubFactory(EnrollmentFactory)
    kind = "entered"
    occurred_at = factory.LazyFunction(timezone.now)


class OutboundMessageFactory(DjangoModelFactory):
    class Meta:
        model = OutboundMessage

    enrollment = factory.SubFactory(EnrollmentFactory)
    contact = factory.LazyAttribute(lambda message: message.enrollment.contact)
    step = factory.Sequence(lambda n: f"step-{n}")
    state = OutboundMessage.State.SENT
    created_at = factory.LazyFunction(timezone.now)


class SegmentFactory(DjangoModelFactory):
    class Meta:
        model = Segment
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.LazyAttribute(lambda segment: segment.key.replace("-", " ").capitalize())
    definition = factory.LazyFunction(
        lambda: {
            "match": "all",
            "conditions": [{"field": "lifecycle_stage", "operator": "in", "value": ["new_lead"]}],
        }
    )


class SegmentMembershipFactory(DjangoModelFactory):
    class Meta:
        model = SegmentMembership

    segment = factory.SubFactory(SegmentFactory)
    contact = factory.SubFactory(ContactFactory)
    entered_at = factory.LazyFunction(timezone.now)


class SegmentCountSnapshotFactory(DjangoModelFactory):
    class Meta:
        model = SegmentCountSnapshot

    segment = factory.SubFactory(SegmentFactory)
    counted_at = factory.LazyFunction(timezone.now)
    member_count = 10


# --- scoring: demo routing --------------------------------------------------------------------

from scoring.models import DemoRoutingRule  # noqa: E402


class DemoRoutingRuleFactory(DjangoModelFactory):
    class Meta:
        model = DemoRoutingRule
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"demo-route-{n}")
    name = factory.LazyAttribute(lambda rule: rule.key.replace("-", " ").capitalize())
    segment = factory.SubFactory(SegmentFactory)


class EspEventFactory(DjangoModelFactory):
    class Meta:
        model = EspEvent

    esp = "postmark"
    event_key = factory.Sequence(lambda n: hashlib.sha256(f"event-{n}".encode()).hexdigest())
    event_id = factory.Sequence(lambda n: f"event-{n}")
    event_type = "delivered"
    kind = EspEvent.Kind.DELIVERED
    recipient = factory.Sequence(lambda n: f"person{n}@example.com")
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)


class CircuitBreakerTripFactory(DjangoModelFactory):
    class Meta:
        model = CircuitBreakerTrip

    metric = "complaint_rate"
    rate = 0.004
    threshold = 0.003
    sent = 1000
    window_start = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=24))
    opened_at = factory.LazyFunction(timezone.now)


class ErasureRecordFactory(DjangoModelFactory):
    class Meta:
        model = "crm.ErasureRecord"

    email_hash = factory.Sequence(lambda n: email_hash(f"erased-{n}@example.com"))
    contact_pk = factory.Sequence(lambda n: 100_000 + n)
    requested_via = "admin"
    erased_at = factory.LazyFunction(timezone.now)


# --- crm.predictions ----------------------------------------------------------------------


class PredictionRunFactory(DjangoModelFactory):
    class Meta:
        model = "predictions.PredictionRun"

    status = "ok"
    model = "BG/NBD + Gamma-Gamma"
    cutoff_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyFunction(timezone.now)
    customers = 120
    frequency_params = factory.LazyFunction(lambda: {"r": 0.6, "alpha": 30, "a": 0.9, "b": 3})


class ContactPredictionFactory(DjangoModelFactory):
    class Meta:
        model = "predictions.ContactPrediction"

    contact = factory.SubFactory(ContactFactory)
    run = factory.SubFactory(PredictionRunFactory)
    orders = 3
    frequency = 2
    recency_days = 60.0
    tenure_days = 200.0
    monetary_value = 45
    last_order_at = factory.LazyFunction(timezone.now)
    probability_active = 0.4
    churn_risk = 0.6
    expected_purchases_90d = 0.5
    predicted_value_12m = 80
    value_percentile = 50.0
    computed_at = factory.LazyFunction(timezone.now)


class MilestoneRuleFactory(DjangoModelFactory):
    class Meta:
        model = "predictions.MilestoneRule"

    key = factory.Sequence(lambda n: f"milestone-{n}")
    name = factory.Sequence(lambda n: f"Milestone {n}")
    start_kind = "order_placed"
    expected_kind = "onboarding_milestone_reached"
    within_days = 7
    watch_from = factory.LazyFunction(timezone.now)


class MissedMilestoneFactory(DjangoModelFactory):
    class Meta:
        model = "predictions.MissedMilestone"

    rule = factory.SubFactory(MilestoneRuleFactory)
    contact = factory.SubFactory(ContactFactory)
    started_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=8))
    due_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
    detected_at = factory.LazyFunction(timezone.now)
