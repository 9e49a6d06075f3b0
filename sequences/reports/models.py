"""Report facts and the aggregates counted from them (docs/reporting.md).

Facts are one row per thing counted (an enrollment, a message, a conversion, a
handoff), written in the transaction that records what they describe; `ReportCount`
sums them by day, sequence, version, step, variant and cohort so that a report page
reads a few hundred small rows and never the activity table.
"""

from django.db import models
from django.db.models import Q

from sequences.models import Sequence


class ReportCount(models.Model):
    """A daily (and monthly) counter: `count` things and `amount_minor` money (report
    currency, cents).

    One row per (span, day, sequence, version, step, variant, cohort, metric); writers add
    to it with one upsert per batch (counts.py), so rows are never read-modify-written.
    Each increment is added to its day's row and to its month's row (span "m", day = the
    first of the month) in the same statement, so a long period reads a row per month
    and only its partial months by day (selectors.Period). `sequence_pk` 0 means "not
    about one sequence" (e.g. all revenue).
    """

    class Span(models.TextChoices):
        DAY = "d", "Day"
        MONTH = "m", "Month"

    day = models.DateField(help_text="The day counted; for a month's row, its first day.")
    span = models.CharField(
        max_length=1,
        choices=Span,
        default=Span.DAY,
        help_text="d: one day's counts; m: the whole month's (the same counts, rolled up).",
    )
    sequence_pk = models.PositiveBigIntegerField(default=0)
    version_pk = models.PositiveBigIntegerField(default=0)
    step = models.CharField(max_length=50, blank=True, default="")
    variant = models.CharField(max_length=20, blank=True, default="")
    cohort = models.CharField(
        max_length=8, blank=True, default="", help_text="mailed or holdout, when it matters."
    )
    metric = models.CharField(max_length=120)
    count = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "span",
                    "day",
                    "sequence_pk",
                    "version_pk",
                    "step",
                    "variant",
                    "cohort",
                    "metric",
                ],
                name="reportcount_one_row_per_span_key",
            )
        ]
        # Covering indexes: a report reads only the index, never the table (bench "reports").
        # The step comes before the day: the overview reads the whole-sequence rows (step
        # "") of many sequences, and with the day first it had to step over every per-step
        # and per-variant row of the period too (about 3 of every 4 entries).
        indexes = [
            models.Index(
                fields=[
                    "sequence_pk",
                    "step",
                    "span",
                    "day",
                    "metric",
                    "variant",
                    "cohort",
                    "version_pk",
                    "count",
                    "amount_minor",
                ],
                name="reportcount_seq_step_idx",
            ),
            # Across sequences (revenue per day, repeat purchases, topics, sales feedback):
            # by metric and period; step and sequence are read from the index too.
            models.Index(
                fields=["metric", "span", "day", "step", "sequence_pk", "count", "amount_minor"],
                name="reportcount_metric_span_idx",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.sequence_pk} {self.step} {self.metric}={self.count}"


class EnrollmentFact(models.Model):
    """One enrollment as the reports see it: cohort, end, and conversions after entry."""

    enrollment = models.OneToOneField(
        "sequences.Enrollment", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    sequence = models.ForeignKey("sequences.Sequence", on_delete=models.CASCADE, related_name="+")
    version_pk = models.PositiveBigIntegerField(default=0)
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    is_holdout = models.BooleanField(default=False)
    enrolled_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_state = models.CharField(max_length=10, blank=True, default="")
    end_reason = models.CharField(max_length=200, blank=True, default="")
    end_step = models.CharField(max_length=50, blank=True, default="")
    # The funnel counts people: when this enrollment's first email was sent, delivered,
    # opened by a person and clicked.
    emailed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    orders = models.PositiveIntegerField(default=0, help_text="Live conversions in the window.")
    revenue_minor = models.BigIntegerField(default=0)
    first_converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["contact", "enrolled_at"], name="enrollmentfact_contact_idx"),
            # The funnel filtered by a segment reads one sequence's enrollments in a period.
            models.Index(fields=["sequence", "enrolled_at"], name="enrollmentfact_seq_idx"),
        ]

    def __str__(self):
        return f"enrollment {self.enrollment_id} ({'holdout' if self.is_holdout else 'mailed'})"

    @property
    def cohort(self) -> str:
        return "holdout" if self.is_holdout else "mailed"


class MessageFact(models.Model):
    """One sequence email as the funnel sees it: each stage counted once per message."""

    message = models.OneToOneField(
        "sequences.OutboundMessage", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    sequence = models.ForeignKey("sequences.Sequence", on_delete=models.CASCADE, related_name="+")
    version_pk = models.PositiveBigIntegerField(default=0)
    step = models.CharField(max_length=50)
    variant = models.CharField(max_length=20, blank=True, default="")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="First human open.")
    machine_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"message {self.message_id} ({self.step})"


class Conversion(models.Model):
    """An order or a won deal: counted once, in the report currency, maybe reversed."""

    class Source(models.TextChoices):
        ORDER = "order", "Order"
        DEAL = "deal", "Won deal"

    key = models.CharField(max_length=220, unique=True, help_text="order:<id> or deal:<id>")
    source = models.CharField(max_length=5, choices=Source)
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    occurred_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="As reported.")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(
        null=True, blank=True, help_text="In REPORT_CURRENCY cents; empty when no rate is known."
    )
    report_currency = models.CharField(max_length=3)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.CharField(max_length=40, blank=True, default="")
    is_repeat = models.BooleanField(default=False)
    previous = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    touch_message = models.ForeignKey(
        "sequences.OutboundMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    touch_kind = models.CharField(max_length=5, blank=True, default="")
    touch_sequence_pk = models.PositiveBigIntegerField(default=0)
    touch_version_pk = models.PositiveBigIntegerField(default=0)
    touch_step = models.CharField(max_length=50, blank=True, default="")
    touch_variant = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["contact", "occurred_at"], name="conversion_contact_idx")]

    def __str__(self):
        return f"{self.key} {self.amount} {self.currency}"


class HandoffFact(models.Model):
    """A sales handoff and its outcome, credited to the sequences and email before it."""

    handoff_pk = models.PositiveBigIntegerField(unique=True)
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    sequence_pks = models.JSONField(default=list, blank=True)
    touch_sequence_pk = models.PositiveBigIntegerField(default=0)
    touch_step = models.CharField(max_length=50, blank=True, default="")
    outcome = models.CharField(max_length=10, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["touch_sequence_pk", "outcome"],
                condition=~Q(outcome=""),
                name="handofffact_outcome_idx",
            )
        ]

    def __str__(self):
        return f"handoff {self.handoff_pk} {self.outcome or 'open'}"


class SegmentConversionCount(models.Model):
    """Contacts whose first conversion came `days` after they entered the segment."""

    segment = models.ForeignKey("crm.Segment", on_delete=models.CASCADE, related_name="+")
    days = models.PositiveIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "days"], name="segmentconversion_one_row")
        ]

    def __str__(self):
        return f"segment {self.segment_id}: {self.count} after {self.days} days"


class SequenceResult(Sequence):
    """A sequence seen through its results: the admin's "Sequence results" pages (admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "sequence result"
        verbose_name_plural = "sequence results"
