"""Sequences: triggered journeys, their email templates, enrollments and the send ledger.

Conditions (triggers, audience, goals, exits, branches, blocks) are condition trees in
the one condition language (crm.conditions); sequences/conditions.py says which mode
each uses, docs/sequences.md has examples.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from crm.models import slug_key_validator
from crm.services.mail import SystemEmailKind


def default_holdout_percent() -> int:
    """A new sequence's holdout share: REPORT_DEFAULT_HOLDOUT_PERCENT (10 unless set)."""
    return getattr(settings, "REPORT_DEFAULT_HOLDOUT_PERCENT", 10)


class Sequence(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class Reenrollment(models.TextChoices):
        NEVER = "never", "Never: once per contact"
        AFTER_EXIT = "after_exit", "After the previous enrollment ended"
        ALWAYS = "always", "Always (still one running enrollment at a time)"

    class OnSendFailure(models.TextChoices):
        UNSET = "", "(choose)"
        CONTINUE = "continue", "Skip the email and continue"
        EXIT = "exit", "End the enrollment as failed"
        NOTIFY_OWNER = "notify_owner", "Create a task for the owner and continue"

    key = models.SlugField(max_length=80, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_sequences",
        help_text="Required before activation: who answers for this sequence.",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    topic = models.ForeignKey(
        "crm.ConsentTopic",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sequences",
        help_text="The consent topic that gates its emails. Leave empty only if transactional.",
    )
    is_transactional = models.BooleanField(
        default=False,
        help_text="Service mail needing no marketing consent (still stops on bounces).",
    )
    priority = models.IntegerField(
        default=0, help_text="Higher runs first when several sequences are due at once."
    )
    reenrollment = models.CharField(max_length=12, choices=Reenrollment, default=Reenrollment.NEVER)
    reenrollment_min_gap_days = models.PositiveIntegerField(default=0)
    max_duration_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Contacts leave after this many days, wherever they are."
    )
    on_send_failure = models.CharField(
        max_length=12, choices=OnSendFailure, blank=True, default=OnSendFailure.UNSET
    )
    audience_conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions on the contact, checked at entry and before every email.",
    )
    audience_segment = models.ForeignKey(
        "crm.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audience_of_sequences",
        help_text="Only the segment's current members may enter and get its emails.",
    )
    goal_conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions on an activity that ends the enrollment as converted.",
    )
    exit_conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions on an activity that ends the enrollment (e.g. kind handed_off).",
    )
    holdout_percent = models.PositiveSmallIntegerField(
        "holdout (%)",
        default=default_holdout_percent,
        validators=[MaxValueValidator(50)],
        help_text="This share of contacts (0-50%) is enrolled but never mailed, to measure "
        "the sequence's real effect (docs/reporting.md). Transactional mail is never held out.",
    )
    variant_winners = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="A/B winners by step key, chosen automatically once significant.",
    )
    current_version = models.ForeignKey(
        "SequenceVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_transactional=True, topic__isnull=True)
                | Q(is_transactional=False, topic__isnull=False),
                name="sequence_topic_or_transactional",
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=50), name="sequence_holdout_at_most_50"
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.is_transactional and self.topic_id:
            raise ValidationError({"topic": "A transactional sequence has no consent topic."})
        if not self.is_transactional and not self.topic_id:
            raise ValidationError(
                {"topic": "Choose the consent topic, or mark the sequence as transactional."}
            )


class SequenceVersion(models.Model):
    """The steps as they were at an activation; enrollments stay on the version they entered."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "number"], name="sequenceversion_number_unique"
            )
        ]

    def __str__(self):
        return f"{self.sequence} v{self.number}"

    def step(self, key: str) -> dict | None:
        return next((step for step in self.steps if step["key"] == key), None)

    def step_after(self, key: str) -> dict | None:
        keys = [step["key"] for step in self.steps]
        position = keys.index(key) + 1 if key in keys else len(keys)
        return self.steps[position] if position < len(keys) else None


class EmailTemplate(models.Model):
    key = models.SlugField(max_length=80, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    preheader = models.CharField(max_length=200, blank=True, default="")
    html = models.TextField(help_text="Link the main button to {{ cta_url }}.")
    text = models.TextField(blank=True, default="", help_text="Generated from the HTML if empty.")
    cta_label = models.CharField("primary call to action: label", max_length=100)
    cta_url = models.URLField("primary call to action: URL", max_length=500)
    blocks = models.JSONField(
        default=list,
        blank=True,
        help_text='Blocks [{"key", "when": {contact conditions}, "html"}], shown as '
        "{{ blocks.key }}",
    )
    is_marketing = models.BooleanField(
        default=True, help_text="Marketing mail needs the unsubscribe link and postal address."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        # Imported here: rendering imports models (for type hints) at module level.
        from sequences.review import template_save_errors

        errors = template_save_errors(self)
        if errors:
            raise ValidationError(errors)


class Step(models.Model):
    """One step of a sequence's draft; activation copies the steps into a version."""

    class Type(models.TextChoices):
        SEND_EMAIL = "send_email", "Send email"
        WAIT_DURATION = "wait_duration", "Wait a duration"
        WAIT_UNTIL_TIME = "wait_until_time", "Wait until a time of day"
        WAIT_UNTIL_DATE = "wait_until_date", "Wait until a date property"
        WAIT_FOR_EVENT = "wait_for_event", "Wait for an event (with timeout)"
        WAIT_UNTIL_BEST_TIME = "wait_until_best_time", "Wait for the contact's best send time"
        BRANCH_IF = "branch_if", "If / else"
        NOTIFY_OWNER = "notify_owner", "Notify the owner"
        CREATE_TASK = "create_task", "Create a task"
        UPDATE_CONTACT = "update_contact", "Update the contact"
        END = "end", "End"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    key = models.SlugField(max_length=50, validators=[slug_key_validator])
    type = models.CharField(max_length=20, choices=Type)
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="steps"
    )
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["sequence", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "key"], name="step_key_unique"),
        ]

    def __str__(self):
        return f"{self.position}. {self.key} ({self.get_type_display()})"

    def clean(self):
        from sequences.conditions import step_config_errors

        if self.type == self.Type.SEND_EMAIL and not self.template_id:
            raise ValidationError({"template": "An email step needs a template."})
        errors = step_config_errors(self.type, self.config)
        if errors:
            raise ValidationError({"config": errors})


class Trigger(models.Model):
    class Type(models.TextChoices):
        ACTIVITY = "activity", "An activity happens"
        LIFECYCLE_STAGE = "lifecycle_stage", "The contact enters a lifecycle stage"
        SEGMENT_ENTERED = "segment_entered", "The contact enters a segment"
        DATE_PROPERTY = "date_property", "A date property is some days away"
        MANUAL = "manual", "Manual enrollment only (admin or API)"
        CHURN_RISK_ROSE = "churn_risk_rose", "Churn risk rose above a percentage"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="triggers")
    type = models.CharField(max_length=20, choices=Type, default=Type.ACTIVITY)
    activity_kind = models.SlugField(max_length=64, blank=True, default="")
    lifecycle_stage = models.SlugField(max_length=50, blank=True, default="")
    conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions on the triggering activity (its properties); empty: every one.",
    )
    segment = models.ForeignKey(
        "crm.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sequence_triggers",
    )
    include_existing_members = models.BooleanField(
        default=False,
        help_text="Also enroll the members found by the segment's first evaluation.",
    )
    date_property = models.CharField(
        max_length=64, blank=True, default="", help_text="A custom date property: renewal_date."
    )
    days_before = models.IntegerField(
        default=0, help_text="Enroll this many days before the date (negative: after it)."
    )
    is_yearly = models.BooleanField(
        default=False, help_text="Every year on the date's month and day (birthdays)."
    )
    churn_risk_above = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Churn risk rose: the percentage (5, 10, … 95) the risk must rise above.",
    )

    class Meta:
        ordering = ["sequence", "pk"]

    def __str__(self):
        if self.type == self.Type.ACTIVITY:
            return f"when {self.activity_kind}"
        if self.type == self.Type.LIFECYCLE_STAGE:
            return f"when stage becomes {self.lifecycle_stage}"
        if self.type == self.Type.SEGMENT_ENTERED:
            return f"when entering segment {self.segment}"
        if self.type == self.Type.DATE_PROPERTY:
            return f"{self.days_before} days before {self.date_property}"
        if self.type == self.Type.CHURN_RISK_ROSE:
            return f"when churn risk rises above {self.churn_risk_above}%"
        return "manual"

    def clean(self):
        from sequences.conditions import property_condition_errors

        if self.type == self.Type.ACTIVITY and not self.activity_kind:
            raise ValidationError({"activity_kind": "Name the activity that starts the sequence."})
        if self.type == self.Type.LIFECYCLE_STAGE and not self.lifecycle_stage:
            raise ValidationError({"lifecycle_stage": "Name the stage that starts the sequence."})
        if self.type == self.Type.SEGMENT_ENTERED and not self.segment_id:
            raise ValidationError({"segment": "Choose the segment that starts the sequence."})
        if self.type == self.Type.DATE_PROPERTY and not self.date_property:
            raise ValidationError({"date_property": "Name the date property, e.g. renewal_date."})
        if self.type == self.Type.CHURN_RISK_ROSE and (
            # The refit records a rise only when the risk crosses a multiple of 5.
            self.churn_risk_above is None
            or not 5 <= self.churn_risk_above <= 95
            or self.churn_risk_above % 5
        ):
            raise ValidationError(
                {"churn_risk_above": "Give a percentage from 5 to 95 in steps of 5, e.g. 70."}
            )
        errors = property_condition_errors(self.conditions)
        if errors:
            raise ValidationError({"conditions": errors})


class Enrollment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting for an event"
        COMPLETED = "completed", "Completed (not converted)"
        CONVERTED = "converted", "Converted"
        EXITED = "exited", "Exited"
        FAILED = "failed", "Failed"

    LIVE_STATES = (State.ACTIVE, State.WAITING)

    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(
        SequenceVersion, on_delete=models.PROTECT, related_name="enrollments"
    )
    state = models.CharField(max_length=10, choices=State, default=State.ACTIVE)
    reason = models.CharField(max_length=200, blank=True, default="")
    current_step = models.CharField(max_length=50, blank=True, default="")
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    waiting_for = models.JSONField(default=dict, blank=True)
    trigger_properties = models.JSONField(default=dict, blank=True)
    trigger_on = models.DateField(
        null=True, blank=True, help_text="The date a date-property trigger enrolled for."
    )
    enrolled_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    needs_review = models.BooleanField(
        default=False, help_text="Went through every step without converting."
    )
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "sequence"],
                condition=Q(state__in=["active", "waiting"]),
                name="enrollment_one_live_per_sequence",
            ),
            models.UniqueConstraint(
                fields=["sequence", "contact", "trigger_on"],
                condition=Q(trigger_on__isnull=False),
                name="enrollment_once_per_trigger_date",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="enrollment_due_idx"),
            models.Index(fields=["contact", "state"], name="enrollment_contact_state_idx"),
        ]

    def __str__(self):
        return f"{self.contact_id} in {self.sequence_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES


class EnrollmentEvent(models.Model):
    """The history of one enrollment: each step, decision and deny reason."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="events")
    step = models.CharField(max_length=50, blank=True, default="")
    kind = models.SlugField(max_length=40)
    reason = models.CharField(max_length=300, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["enrollment", "occurred_at", "pk"]

    def __str__(self):
        return f"{self.kind} {self.step} {self.reason}".strip()


class OutboundMessage(models.Model):
    """The send ledger: every email we send, each with the uuid its webhooks are matched by.

    A sequence step's row has an enrollment, and at most one row (so at most one email)
    exists per (enrollment, step). A system email's row (crm.services.mail: confirmations,
    staff notices, alerts, test sends) has no enrollment, its `kind`, and the keyed hash of
    its recipient; `contact` is set only when the recipient is a contact.
    """

    #: A sequence step; every other kind is a system email.
    SEQUENCE = "sequence"
    KIND_CHOICES = [(SEQUENCE, "Sequence step"), *SystemEmailKind.choices]

    class State(models.TextChoices):
        CLAIMED = "claimed", "Claimed (sending)"
        RETRY = "retry", "Waiting to retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        UNKNOWN = "unknown", "Unknown (the ESP may have it; never resent automatically)"

    class Resolution(models.TextChoices):
        """How an `unknown` row was resolved (sequences/services/ledger.py)."""

        NONE = "", "(not resolved)"
        WEBHOOK = "webhook", "ESP webhook event"
        ESP_LOOKUP = "esp_lookup", "Found through the ESP's API"
        STAFF_SENT = "staff_sent", "Marked sent"
        STAFF_FAILED = "staff_failed", "Marked failed"
        STAFF_RESEND = "staff_resend", "ESP did not get it: resend"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    step = models.CharField(max_length=50)
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="outbound_messages",
    )
    kind = models.CharField(max_length=30, choices=KIND_CHOICES, default=SEQUENCE)
    recipient_hash = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="System emails: the keyed hash of the recipient address, never the address.",
    )
    idempotency_key = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="System emails: at most one send per (kind, key, recipient) when set.",
    )
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    is_marketing = models.BooleanField(default=True)
    variant = models.CharField(
        max_length=20, blank=True, default="", help_text="The A/B variant sent, if any."
    )
    state = models.CharField(max_length=10, choices=State, default=State.CLAIMED)
    reason = models.CharField(max_length=300, blank=True, default="")
    esp_message_id = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    resolution = models.CharField(
        max_length=20, choices=Resolution, blank=True, default=Resolution.NONE
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolution_note = models.CharField(
        max_length=300, blank=True, default="", help_text="The evidence or the staff reason."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "step"], name="outboundmessage_once_per_step"
            ),
            models.UniqueConstraint(
                fields=["kind", "idempotency_key", "recipient_hash"],
                condition=~Q(idempotency_key=""),
                name="outboundmessage_system_once",
            ),
            # A sequence step always has its enrollment; a system email never has one.
            models.CheckConstraint(
                condition=Q(kind="sequence", enrollment__isnull=False)
                | (~Q(kind="sequence") & Q(enrollment__isnull=True)),
                name="outboundmessage_kind_matches_enrollment",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "is_marketing", "created_at"], name="outbound_cap_idx"),
            models.Index(
                fields=["recipient_hash"],
                condition=~Q(recipient_hash=""),
                name="outbound_recipient_idx",
            ),
            models.Index(fields=["state", "claimed_at"], name="outbound_state_idx"),
        ]

    def __str__(self):
        if self.kind != self.SEQUENCE:
            return f"{self.get_kind_display()} ({self.state})"
        return f"{self.step} → contact {self.contact_id} ({self.state})"


class EspEvent(models.Model):
    """The webhook inbox: each ESP tracking event stored once, then processed by a task."""

    class Kind(models.TextChoices):
        """Our own classification of the event (anymail's `bounced` mixes hard and soft)."""

        PENDING = "", "(not classified yet)"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        DEFERRED = "deferred", "Deferred (still trying)"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed at the ESP"
        FAILED = "failed", "Rejected or failed"
        IGNORED = "ignored", "No action"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Waiting to be processed"
        PROCESSED = "processed", "Processed"
        UNKNOWN_MESSAGE = "unknown_message", "Processed, but no matching message"
        FAILED = "failed", "Processing failed"

    esp = models.SlugField(max_length=40)
    event_key = models.CharField(
        max_length=64, help_text="SHA-256 of the ESP's event id (or payload), recipient and type."
    )
    event_id = models.CharField(max_length=200, blank=True, default="")
    event_type = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, choices=Kind, blank=True, default=Kind.PENDING)
    recipient = models.CharField(max_length=254, blank=True, default="")
    esp_message_id = models.CharField(max_length=200, blank=True, default="")
    message_key = models.CharField(
        max_length=200, blank=True, default="", help_text="Counts soft bounces once per message."
    )
    message = models.ForeignKey(
        OutboundMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="esp_events"
    )
    sending_domain = models.CharField(max_length=253, blank=True, default="")
    description = models.CharField(
        max_length=300, blank=True, default="", help_text="The ESP's reason or MTA response."
    )
    user_agent = models.CharField(max_length=300, blank=True, default="")
    click_url = models.CharField(max_length=2000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome, default=Outcome.PENDING)
    reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_key"], name="espevent_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["outcome", "occurred_at"], name="espevent_outcome_idx"),
            models.Index(fields=["kind", "occurred_at"], name="espevent_kind_idx"),
            models.Index(fields=["recipient", "kind"], name="espevent_recipient_idx"),
        ]

    def __str__(self):
        return f"{self.esp} {self.event_type} {self.recipient}".strip()


class CircuitBreakerTrip(models.Model):
    """Marketing sends are paused while a trip is open (resumed_at empty)."""

    metric = models.SlugField(max_length=40, help_text="complaint_rate or hard_bounce_rate")
    rate = models.FloatField()
    threshold = models.FloatField()
    sent = models.PositiveIntegerField(help_text="Marketing emails sent in the window.")
    window_start = models.DateTimeField()
    opened_at = models.DateTimeField()
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self):
        state = "open" if self.resumed_at is None else "resumed"
        return f"{self.metric} {self.rate:.2%} ({state})"


class ComplaintRateAlert(models.Model):
    """One warning per sending domain per day when the complaint rate reaches the warn level.

    The unique key makes the alert idempotent: every processing run checks the rate,
    but only the first run that sees it crossed creates the row and sends the email.
    """

    day = models.DateField()
    domain = models.CharField(max_length=253)
    rate = models.FloatField()
    complaints = models.PositiveIntegerField()
    delivered = models.PositiveIntegerField(
        help_text="Or sent, when the ESP reports no deliveries."
    )
    alerted_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "domain"]
        constraints = [
            models.UniqueConstraint(fields=["day", "domain"], name="one_complaint_alert_per_day")
        ]

    def __str__(self):
        return f"{self.domain} {self.day}: complaints {self.rate:.2%}"


class UnknownMessagesAlert(models.Model):
    """One alert per day when `unknown` send-ledger rows reach the threshold.

    The unique day makes the alert idempotent: the check runs every few minutes, but
    only the first run that sees the threshold crossed records it and emails the owners.
    """

    day = models.DateField(unique=True)
    count = models.PositiveIntegerField()
    threshold = models.PositiveIntegerField()
    alerted_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day}: {self.count} unknown emails"
