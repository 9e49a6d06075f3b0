"""Fitted model runs and the per-contact predictions they produced."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class PredictionRun(models.Model):
    """One fit of the purchase models: a refit for today, or a holdout calibration check."""

    class Kind(models.TextChoices):
        REFIT = "refit", "Refit (predictions shown on contacts)"
        CALIBRATION = "calibration", "Calibration (fit before a cut-off, compare after it)"
        SEND_TIME = "send_time", "Best send times"

    class Status(models.TextChoices):
        OK = "ok", "Fitted"
        NOT_ENOUGH_DATA = "not_enough_data", "Not enough data"
        FAILED = "failed", "Fit failed"

    kind = models.CharField(max_length=12, choices=Kind, default=Kind.REFIT)
    status = models.CharField(max_length=16, choices=Status)
    reason = models.TextField(blank=True, default="", help_text="Why there are no numbers.")
    model = models.CharField(max_length=100, help_text="The models and the code that fitted them.")
    cutoff_at = models.DateTimeField(help_text="Orders up to this moment were used.")
    holdout_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Calibration only: days compared after the cut-off."
    )
    customers = models.PositiveIntegerField(default=0, help_text="Contacts with orders.")
    repeat_customers = models.PositiveIntegerField(default=0)
    valued_customers = models.PositiveIntegerField(
        default=0, help_text="Contacts whose orders carry a total."
    )
    frequency_params = models.JSONField(default=dict, blank=True, help_text="BG/NBD r, α, a, b.")
    spend_params = models.JSONField(default=dict, blank=True, help_text="Gamma-Gamma p, q, γ.")
    results = models.JSONField(default=dict, blank=True, help_text="Calibration figures.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["kind", "-started_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.cutoff_at:%Y-%m-%d %H:%M}: {self.status}"


class ContactPrediction(models.Model):
    """The latest refit's numbers for one contact with orders, with the inputs behind them.

    Numbers are null when the run could not fit (see `reason`): no number is better
    than a made-up one.
    """

    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.CASCADE, primary_key=True, related_name="prediction"
    )
    run = models.ForeignKey(PredictionRun, on_delete=models.PROTECT, related_name="predictions")
    # Inputs (RFM): order days, the first counting as day 0 of the customer's tenure.
    orders = models.PositiveIntegerField(help_text="Days with at least one order.")
    frequency = models.PositiveIntegerField(help_text="Repeat order days (orders - 1).")
    recency_days = models.FloatField(help_text="Days from the first to the last order.")
    tenure_days = models.FloatField(help_text="Days from the first order to the fit.")
    monetary_value = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Mean order total."
    )
    last_order_at = models.DateTimeField()
    # Outputs.
    probability_active = models.FloatField(null=True, blank=True)
    churn_risk = models.FloatField(null=True, blank=True, help_text="1 - P(active).")
    expected_purchases_90d = models.FloatField(null=True, blank=True)
    next_order_on = models.DateField(
        null=True, blank=True, help_text="Expected next order if still active."
    )
    predicted_value_12m = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True
    )
    value_percentile = models.FloatField(
        null=True, blank=True, help_text="Share of valued customers predicted to spend less."
    )
    reason = models.CharField(max_length=300, blank=True, default="")
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["churn_risk"], name="prediction_churn_risk_idx"),
            models.Index(fields=["value_percentile"], name="prediction_value_pct_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(churn_risk__isnull=True) | Q(churn_risk__gte=0, churn_risk__lte=1),
                name="contactprediction_churn_risk_is_probability",
            ),
        ]

    def __str__(self):
        return f"prediction for contact {self.contact_id}"

    @property
    def churn_risk_percent(self) -> int | None:
        return None if self.churn_risk is None else round(self.churn_risk * 100)


class MilestoneRule(models.Model):
    """ "X did not happen within N days of Y": e.g. no onboarding_completed 7 days after an order.

    Y is the contact's first `start_kind` activity since `watch_from`; the rule fires once
    per contact, at the first check after the deadline, if no `expected_kind` activity
    happened between Y and the deadline. Firing records a `milestone_missed` activity
    (which a sequence's activity trigger can start on) and, if asked, a task.
    """

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    start_kind = models.SlugField(max_length=64, help_text="Y: the activity that starts the clock.")
    expected_kind = models.SlugField(
        max_length=64, help_text="X: the activity that should follow within the days."
    )
    within_days = models.PositiveSmallIntegerField(help_text="N: days X may take after Y.")
    start_conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Only a Y that also meets these counts, e.g. total is at least 100 "
        "(conditions on the activity; empty: every Y).",
    )
    expected_conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Only an X that also meets these counts (conditions on the activity; "
        "empty: every X).",
    )
    creates_task = models.BooleanField(
        default=True,
        help_text="Create a task for the contact's owner (else the rule's task owner).",
    )
    task_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="milestone_rules",
        help_text="Gets the task when the contact has no owner.",
    )
    watch_from = models.DateTimeField(
        help_text="Only Y from this moment on counts, so a new rule does not flag all history."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(within_days__gte=1) & Q(within_days__lte=365),
                name="milestonerule_within_days_1_to_365",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        # Imported here: the segment compiler imports this module (churn risk, value).
        from crm.conditions.evaluator import definition_is_empty
        from crm.segments.catalog import ACTIVITY_MODE
        from crm.segments.validation import References, definition_problems

        errors = {}
        for field in ("start_conditions", "expected_conditions"):
            tree = getattr(self, field)
            if definition_is_empty(tree):
                continue
            problems = definition_problems(
                tree, references=References.none(), mode=ACTIVITY_MODE, allow_empty=True
            )
            if problems:
                errors[field] = [str(problem) for problem in problems]
        if errors:
            raise ValidationError(errors)

    @property
    def description(self) -> str:
        from crm.conditions.evaluator import definition_is_empty

        expected = self.expected_kind + (
            "" if definition_is_empty(self.expected_conditions) else " (with conditions)"
        )
        start = self.start_kind + (
            "" if definition_is_empty(self.start_conditions) else " (with conditions)"
        )
        return f"no {expected} within {self.within_days} days of {start}"


class MissedMilestone(models.Model):
    """One contact who missed one milestone: written once, by a unique constraint."""

    rule = models.ForeignKey(MilestoneRule, on_delete=models.CASCADE, related_name="misses")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="missed_milestones"
    )
    started_at = models.DateTimeField(help_text="When Y happened.")
    due_at = models.DateTimeField(help_text="The deadline X missed.")
    detected_at = models.DateTimeField()
    task = models.ForeignKey(
        "crm.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-detected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "contact"], name="missedmilestone_once_per_rule_and_contact"
            ),
        ]
        indexes = [models.Index(fields=["-detected_at"], name="missed_milestone_recent_idx")]

    def __str__(self):
        return f"{self.contact_id} missed {self.rule_id}"


class ContactSendTime(models.Model):
    """The local hour a contact opens and clicks most (crm.predictions.send_times)."""

    class Source(models.TextChoices):
        CONTACT = "contact", "The contact's own opens and clicks"
        AUDIENCE = "audience", "The audience's (too few of the contact's own)"
        DEFAULT = "default", "The default (nobody has opened anything yet)"

    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.CASCADE, primary_key=True, related_name="send_time"
    )
    hour = models.PositiveSmallIntegerField(help_text="0–23 in the contact's time zone.")
    source = models.CharField(max_length=10, choices=Source)
    events = models.PositiveIntegerField(help_text="Human opens and clicks counted.")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(hour__lte=23), name="contactsendtime_hour_0_23"),
        ]

    def __str__(self):
        return f"{self.contact_id}: {self.hour:02d}:00 ({self.source})"
