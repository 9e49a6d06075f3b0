"""Lead scoring and the sales handoff: rules, the score ledger, handoffs and routing."""

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from crm.models import AppendOnlyModel, LifecycleStage, TimestampedModel, slug_key_validator

country_list_validator = RegexValidator(
    r"^\s*[A-Z]{2}(\s*,\s*[A-Z]{2})*\s*$",
    "List two-letter country codes in capitals, separated by commas: DE, AT, CH.",
)

# --- Scoring rules --------------------------------------------------------------------------


class ScoringRule(TimestampedModel):
    """Points for something a person did (engagement) or is (fit).

    Engagement rules match activities of one kind (blank: any engagement) that meet
    `conditions`, a tree over the activity (crm.conditions, activity mode). Fit rules
    match contacts that meet `conditions` over the contact, its company, tags and
    properties (contact mode); a contact holds a fit rule's points while they match
    and loses them when they stop matching.
    """

    class Category(models.TextChoices):
        ENGAGEMENT = "engagement", "Engagement (what they do)"
        FIT = "fit", "Fit (who they are)"

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(
        max_length=100, help_text="Shown in score reasons, e.g. “Pricing page viewed”."
    )
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=10, choices=Category, default=Category.ENGAGEMENT)
    is_active = models.BooleanField(default=True)
    activity_kind = models.SlugField(
        max_length=64,
        blank=True,
        default="",
        validators=[slug_key_validator],
        help_text="Engagement rules: the activity kind, e.g. page_viewed. "
        "Blank matches any engagement activity.",
    )
    points = models.IntegerField(
        help_text="Points per match; negative points lower the score. 0 makes a pure signal."
    )
    cap_points = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Engagement rules: at most this many points per contact per cap period. "
        "Blank: no cap.",
    )
    cap_period_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1)], help_text="The cap period, in days."
    )
    halve_after_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Engagement rules: points lose half their value after this many days.",
    )
    expire_after_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Engagement rules: points are removed after this many days.",
    )
    conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Engagement: conditions on the activity (path contains /pricing). "
        "Fit: conditions on the contact and its company. Empty: every activity or contact.",
    )
    min_silence_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Re-engagement: match only when the person did nothing for at least this "
        "many days before, and has been known that long.",
    )

    class Meta:
        ordering = ["category", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expire_after_days__isnull=True)
                | Q(halve_after_days__isnull=True)
                | Q(expire_after_days__gt=models.F("halve_after_days")),
                name="scoringrule_expiry_after_halving",
                violation_error_message="Points must expire later than they halve.",
            ),
            models.CheckConstraint(
                condition=Q(category="engagement")
                | Q(
                    activity_kind="",
                    cap_points__isnull=True,
                    halve_after_days__isnull=True,
                    expire_after_days__isnull=True,
                    min_silence_days__isnull=True,
                ),
                name="scoringrule_fit_has_no_engagement_settings",
                violation_error_message="Fit rules have no activity kind, cap, decay or "
                "silence: those settings are for engagement rules.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_engagement(self) -> bool:
        return self.category == self.Category.ENGAGEMENT


# --- The score ledger -----------------------------------------------------------------------


class ScoreChange(AppendOnlyModel):
    """One change to a contact's score, with the rule and activity that caused it.

    Contact.lead_score caches the sum of a contact's rows. Every engagement match is
    recorded, including those the cap held at 0 points, so handoff rules can see the
    signal and people can see why it did not count. Decay appends reversing rows
    that point at the row they reduce.
    """

    class Part(models.TextChoices):
        ENGAGEMENT = "engagement", "Engagement"
        FIT = "fit", "Fit"

    class Reason(models.TextChoices):
        ACTIVITY = "activity", "Activity matched"
        CAPPED = "capped", "Activity matched, cap reached"
        FIT = "fit", "Fit changed"
        DECAY = "decay", "Decay"

    class DecayStep(models.IntegerChoices):
        NONE = 0, "—"
        HALVED = 1, "Halved"
        EXPIRED = 2, "Expired"

    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="score_changes"
    )
    rule = models.ForeignKey(ScoringRule, on_delete=models.PROTECT, related_name="score_changes")
    activity = models.ForeignKey(
        "crm.Activity",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="score_changes",
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="decays",
        help_text="Decay rows: the row whose points they reduce.",
    )
    part = models.CharField(max_length=10, choices=Part)
    reason = models.CharField(max_length=10, choices=Reason)
    points = models.IntegerField()
    occurred_at = models.DateTimeField(help_text="When the activity, fit change or decay happened.")
    created_at = models.DateTimeField(auto_now_add=True)
    decay_step = models.PositiveSmallIntegerField(choices=DecayStep, default=DecayStep.NONE)
    decay_run = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            # Re-delivering or re-scoring an activity never scores it twice.
            models.UniqueConstraint(
                fields=["rule", "activity"],
                condition=Q(activity__isnull=False),
                name="scorechange_rule_activity_unique",
            ),
            # Two decay runs at once never halve or expire the same points twice.
            models.UniqueConstraint(
                fields=["reverses", "decay_step"],
                condition=Q(reverses__isnull=False),
                name="scorechange_decay_step_unique",
            ),
            models.CheckConstraint(
                condition=Q(reason="decay", reverses__isnull=False, decay_step__gt=0)
                | (~Q(reason="decay") & Q(reverses__isnull=True, decay_step=0)),
                name="scorechange_decay_reverses_a_row",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "rule", "occurred_at"]),
            models.Index(fields=["rule", "occurred_at"]),
            models.Index(
                fields=["decay_run"],
                condition=Q(decay_run__isnull=False),
                name="scorechange_decay_run_idx",
            ),
        ]

    def __str__(self):
        return f"{self.points:+d} {self.rule_id} for contact {self.contact_id}"


# --- Handoff rules, handoffs and routing ----------------------------------------------------


class HandoffRule(TimestampedModel):
    """When a lead is ready for sales: a score threshold, optionally a recent strong signal."""

    class SlaBreachAction(models.TextChoices):
        NOTIFY_MANAGER = "notify_manager", "Notify the sales manager"
        REASSIGN = "reassign", "Reassign to the next salesperson"

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Rules are tried in this order; the first that matches hands off."
    )
    score_threshold = models.IntegerField(validators=[MinValueValidator(1)])
    signal_rules = models.ManyToManyField(
        ScoringRule,
        blank=True,
        related_name="handoff_rules",
        limit_choices_to={"category": ScoringRule.Category.ENGAGEMENT},
        help_text="High-intent signals (pricing page, demo request…): if any are chosen, one "
        "of them must have matched within the signal window.",
    )
    signal_window_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1)]
    )
    lifecycle_stage = models.ForeignKey(
        LifecycleStage,
        to_field="key",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Move the contact to this stage on handoff (only ever forward). "
        "Blank: leave the stage.",
    )
    recycle_stage = models.ForeignKey(
        LifecycleStage,
        to_field="key",
        on_delete=models.PROTECT,
        default=LifecycleStage.Key.ENGAGED_LEAD.value,
        related_name="+",
        help_text="Where a recycled lead goes back to for nurturing.",
    )
    rearm_margin = models.PositiveIntegerField(
        default=10,
        help_text="After a handoff is closed, the score must fall this far below the "
        "threshold before the contact can be handed off again.",
    )
    cooldown_days = models.PositiveSmallIntegerField(
        default=14, help_text="Days after a handoff closes before the contact can come back."
    )
    sla_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Minutes sales has to contact the lead.",
    )
    on_sla_breach = models.CharField(
        max_length=20, choices=SlaBreachAction, default=SlaBreachAction.NOTIFY_MANAGER
    )
    sla_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who hears about missed SLAs (and every breach when reassigning).",
    )

    class Meta:
        ordering = ["position", "key"]

    def __str__(self):
        return self.name


class Handoff(models.Model):
    """A lead handed to sales, and what sales did with it."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CLAIMED = "claimed", "Claimed"
        CONTACTED = "contacted", "Contacted"
        ACCEPTED = "accepted", "Accepted"
        RECYCLED = "recycled", "Recycled to nurture"
        REJECTED = "rejected", "Rejected: not a fit"

    OPEN_STATUSES = (Status.NEW, Status.CLAIMED, Status.CONTACTED)
    #: Until one of these, the SLA clock runs.
    UNTOUCHED_STATUSES = (Status.NEW, Status.CLAIMED)

    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="handoffs")
    rule = models.ForeignKey(HandoffRule, on_delete=models.PROTECT, related_name="handoffs")
    status = models.CharField(max_length=10, choices=Status, default=Status.NEW)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handoffs",
    )
    routed_by = models.CharField(
        max_length=100, blank=True, default="", help_text="How the owner was chosen."
    )
    score = models.IntegerField(help_text="The score when handed off.")
    engagement_score = models.IntegerField(default=0)
    fit_score = models.IntegerField(default=0)
    reasons = models.JSONField(
        default=list, blank=True, help_text="The signals and top score reasons at handoff."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sla_due_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    contacted_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    close_reason = models.TextField(blank=True, default="")
    deal = models.ForeignKey(
        "crm.Deal", on_delete=models.SET_NULL, null=True, blank=True, related_name="handoffs"
    )
    rearmed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the score fell far enough below the threshold to allow a new handoff.",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        # Held by the "Sales manager" group: move a lead from one salesperson to another.
        permissions = [("reassign_handoff", "Can reassign a handoff to another salesperson")]
        constraints = [
            models.UniqueConstraint(
                fields=["contact"],
                condition=Q(status__in=["new", "claimed", "contacted"]),
                name="handoff_one_open_per_contact",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["recycled", "rejected"]) | ~Q(close_reason=""),
                name="handoff_recycle_reject_have_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "sla_due_at"]),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["rule", "status"]),
            models.Index(fields=["contact", "-created_at"]),
            # The queue's order (most urgent first), read a page at a time for any status
            # filter; status IN (...) on the index above needs a sort of every open row.
            models.Index(fields=["sla_due_at", "id"], name="handoff_queue_order_idx"),
            # The queue's default page (open handoffs by SLA due time) reads only open rows,
            # however many closed ones years of handoffs leave behind.
            models.Index(
                fields=["sla_due_at", "id"],
                condition=Q(status__in=("new", "claimed", "contacted")),
                name="handoff_open_queue_idx",
            ),
            # The minute-by-minute SLA check: clocks still running and not yet breached.
            models.Index(
                fields=["sla_due_at"],
                condition=Q(status__in=("new", "claimed"), sla_breached_at__isnull=True),
                name="handoff_sla_clock_idx",
            ),
        ]

    def __str__(self):
        return f"Handoff #{self.pk} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Territory(TimestampedModel):
    """A routing table row: leads from these countries go round-robin to these people."""

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    countries = models.CharField(
        max_length=500,
        validators=[country_list_validator],
        help_text="Two-letter country codes, comma-separated: DE, AT, CH.",
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="territories")
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="When countries overlap, the first territory wins."
    )

    class Meta:
        verbose_name_plural = "territories"
        ordering = ["position", "key"]

    def __str__(self):
        return self.name

    @property
    def country_codes(self) -> set[str]:
        return {code.strip().upper() for code in self.countries.split(",") if code.strip()}


class RoundRobinPointer(models.Model):
    """Who got the last round-robin lead in a pool ("sales" or "territory:<key>").

    Locked with select_for_update while choosing, so two handoffs never pick the
    same next person.
    """

    pool = models.CharField(max_length=100, unique=True)
    last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pool"]

    def __str__(self):
        return self.pool


class DemoRoutingRule(TimestampedModel):
    """Who gets a demo request: the first active rule whose segment holds the contact.

    The rule's assignee takes it; without one, its people take turns (round-robin),
    and without people the Sales group does. No matching rule: the usual routing.
    """

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Rules are tried in this order; the first whose segment matches wins."
    )
    segment = models.ForeignKey(
        "crm.Segment",
        on_delete=models.PROTECT,
        related_name="demo_routing_rules",
        help_text="Checked live when the demo is requested, not from tracked memberships.",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Give every demo from this segment to this person. Blank: take turns below.",
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="demo_routing_rules",
        help_text="Round-robin among these people. Blank: among the Sales group.",
    )

    class Meta:
        ordering = ["position", "key"]

    def __str__(self):
        return self.name

    @property
    def round_robin_pool(self) -> str:
        return f"demo:{self.key}"


# --- Rising intent ---------------------------------------------------------------------------


class RisingIntent(models.Model):
    """A contact whose engagement points rose sharply this week against their own baseline.

    Written and cleared only by scoring.intent.rising_intent_refresh (a periodic task), so
    pages read one row instead of counting activities.
    """

    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.CASCADE, related_name="rising_intent"
    )
    recent_points = models.IntegerField(help_text="Engagement points in the recent window.")
    weekly_baseline = models.FloatField(
        help_text="Mean engagement points a week in the baseline weeks before it."
    )
    behaviours = models.JSONField(
        default=list,
        blank=True,
        help_text="The rules behind the recent points, most points first: "
        "[{rule, label, kind, count, points}].",
    )
    flagged_at = models.DateTimeField(help_text="When the rise was first seen.")
    computed_at = models.DateTimeField(help_text="The refresh that last confirmed it.")

    class Meta:
        ordering = ["-recent_points", "pk"]
        verbose_name_plural = "rising intents"

    def __str__(self):
        return f"Rising intent of contact {self.contact_id}"
