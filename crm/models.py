"""The CRM core: people, companies, consent, suppressions, deals and the activity log."""

import functools
import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Trim

from crm.emails import normalise_email


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names; cached, as listing them reads the tz database from disk."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """Refuse anything that is not an IANA time zone name such as Europe/Berlin."""
    if value and value not in time_zone_names():
        raise ValidationError(f"{value!r} is not a time zone name such as Europe/Berlin.")


country_code_validator = RegexValidator(
    r"^[A-Z]{2}$", "Use a two-letter ISO country code in capitals, such as DE or US."
)
slug_key_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$", "Use lower-case letters, digits, '-' and '_' only."
)


class NormalisedEmailField(models.EmailField):
    """An email stored and looked up trimmed and lower-cased.

    Normalising in get_prep_value covers saves and lookups alike, so
    `Contact.objects.get(email=" Ann@X.com ")` finds ann@x.com.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return normalise_email(value) if isinstance(value, str) else value

    def to_python(self, value):
        value = super().to_python(value)
        return normalise_email(value) if isinstance(value, str) else value


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AppendOnlyQuerySet(models.QuerySet):
    """Refuse bulk edits and deletes of ledger rows."""

    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} rows are append-only; add a new row.")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} rows are append-only and never deleted.")


class AppendOnlyModel(models.Model):
    """A ledger row: written once, never edited or deleted.

    The database enforces the same for updates with a trigger (see the migration
    that creates it), so raw SQL cannot rewrite history either.
    """

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only; add a new row.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} rows are append-only and never deleted.")


# --- Companies and contacts -----------------------------------------------------------------


class Company(TimestampedModel):
    class Size(models.TextChoices):
        SOLO = "1", "1"
        MICRO = "2-10", "2-10"
        SMALL = "11-50", "11-50"
        MEDIUM = "51-200", "51-200"
        LARGE = "201-1000", "201-1,000"
        ENTERPRISE = "1001+", "1,001+"

    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=253, blank=True, default="")
    size = models.CharField(max_length=10, choices=Size, blank=True, default="")
    industry = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(
        max_length=2, blank=True, default="", validators=[country_code_validator]
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_companies",
    )

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("domain"), condition=~Q(domain=""), name="company_domain_unique"
            ),
        ]

    def __str__(self):
        return self.name


class LifecycleStage(models.Model):
    """A stage of the customer journey; the keys below are the defaults every install has."""

    class Key(models.TextChoices):
        SUBSCRIBER = "subscriber", "Subscriber"
        NEW_LEAD = "new_lead", "New lead"
        ENGAGED_LEAD = "engaged_lead", "Engaged lead"
        OPPORTUNITY = "opportunity", "Opportunity"
        NEW_CUSTOMER = "new_customer", "New customer"
        ACTIVE_CUSTOMER = "active_customer", "Active customer"
        AT_RISK_CUSTOMER = "at_risk_customer", "At-risk customer"
        CHURNED = "churned", "Churned"

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)
    is_customer = models.BooleanField(
        default=False, help_text="Contacts in this stage have bought from us."
    )

    class Meta:
        ordering = ["position", "key"]

    def __str__(self):
        return self.name


class Tag(models.Model):
    name = models.SlugField(max_length=60, unique=True, allow_unicode=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Contact(TimestampedModel):
    class CountrySource(models.TextChoices):
        UNKNOWN = "", "Unknown"
        DECLARED = "declared", "Declared by the person"
        IMPORT = "import", "Imported"
        IP = "ip", "Guessed from IP address"
        PHONE = "phone", "Phone number prefix"
        COMPANY = "company", "Company's country"
        STAFF = "staff", "Entered by staff"

    class Source(models.TextChoices):
        UNKNOWN = "", "Unknown"
        FORM = "form", "Web form"
        GUIDE = "guide", "Guide or content download"
        SIGNUP = "signup", "Product sign-up"
        API = "api", "API"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Added by staff"
        EVENT = "event", "Tracked event"
        ESP = "esp", "Email provider"

    class VouchedBy(models.TextChoices):
        """Who vouched that this address is the person's own (DESIGN invariant 8)."""

        NOBODY = "", "Nobody yet"
        SERVER_KEY = "server_key", "Server API key"
        SIGN_UP = "sign_up", "Confirmed sign-up (double opt-in)"
        IMPORT = "import", "Import with consent"
        STAFF = "staff", "Staff"
        EXISTING = "existing", "A trusted source, before vouching was recorded"

    email = NormalisedEmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    job_title = models.CharField(max_length=150, blank=True, default="")
    country = models.CharField(
        max_length=2, blank=True, default="", validators=[country_code_validator]
    )
    country_source = models.CharField(
        max_length=10, choices=CountrySource, blank=True, default=CountrySource.UNKNOWN
    )
    time_zone = models.CharField(
        max_length=64, blank=True, default="", validators=[validate_time_zone]
    )
    language = models.CharField(max_length=16, blank=True, default="")
    lifecycle_stage = models.ForeignKey(
        LifecycleStage,
        to_field="key",
        on_delete=models.PROTECT,
        default=LifecycleStage.Key.NEW_LEAD.value,
        related_name="contacts",
    )
    lifecycle_stage_changed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source, blank=True, default=Source.UNKNOWN)
    entry_point = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="The form, guide or page that brought this person in (first touch).",
    )
    utm_source = models.CharField(max_length=200, blank=True, default="")
    utm_medium = models.CharField(max_length=200, blank=True, default="")
    utm_campaign = models.CharField(max_length=200, blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_contacts",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    properties = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(max_length=200, blank=True, default="")
    lead_score = models.IntegerField(
        default=0, help_text="Cached total score; the scoring ledger explains it."
    )
    last_engaged_at = models.DateTimeField(null=True, blank=True)
    # A browser key is public: anyone can name any address with it. Until a trusted
    # source vouches for the address, the send gate refuses every email to it.
    vouched_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a trusted source first vouched for this address; "
        "until then Nextstep sends it no email at all.",
    )
    vouched_by = models.CharField(max_length=20, choices=VouchedBy, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(vouched_at__isnull=True, vouched_by="")
                | (Q(vouched_at__isnull=False) & ~Q(vouched_by="")),
                name="contact_vouched_by_whom",
            ),
            # The field normalises on save; the database refuses un-normalised raw writes,
            # so the plain unique index on email means one person, one contact.
            models.CheckConstraint(
                condition=Q(email=Lower(Trim("email"))), name="contact_email_normalised"
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="contact_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["lifecycle_stage", "-created_at"]),
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["country"]),
            models.Index(fields=["-lead_score"]),
            models.Index(fields=["-updated_at"]),
            # The changelist's source filter reads one source newest first (ORDER BY id
            # DESC LIMIT 50, and a capped count): without it a rare or absent source
            # scanned all contacts (1.3 s at 1M).
            models.Index(fields=["source", "id"], name="contact_source_idx"),
        ]

    def __str__(self):
        return self.full_name or self.email

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class LifecycleStageChange(models.Model):
    """Who or what moved a contact between stages, and why."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(
        LifecycleStage,
        to_field="key",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    to_stage = models.ForeignKey(
        LifecycleStage, to_field="key", on_delete=models.PROTECT, related_name="+"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(
        max_length=100, help_text="What made the change: admin, api, import, a rule or sequence."
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self):
        return f"{self.from_stage_id or '-'} → {self.to_stage_id}"


# --- Consent and suppression ----------------------------------------------------------------


class ContactImport(models.Model):
    """A CSV import between its preview and its confirm: the rows, parsed and checked once.

    The preview reads the file, checks every cell and keeps the rows that passed here
    (JSON), with the options the person chose and the rows left out; Confirm applies
    them without reading or checking the file again, re-checking only what the database
    may have changed meanwhile (crm.services.imports). The token is the confirm form's
    only field: it is random, belongs to the user who previewed, works once and
    expires (crm.services.imports.STAGED_IMPORT_TTL); expired rows are deleted by the
    next preview and hourly (crm.tasks.expire_staged_imports_task), and an erasure
    deletes any that name the address.
    """

    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    file_name = models.CharField(max_length=300, blank=True, default="")
    source = models.CharField(max_length=200)
    consent_topic = models.ForeignKey(
        "ConsentTopic", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    consent_text = models.ForeignKey(
        "ConsentText", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    lawful_basis = models.CharField(max_length=30, blank=True, default="")
    ignored_columns = models.JSONField(default=list, blank=True)
    # Plain JSON text, not a JSONField: written and read whole, never queried, and
    # PostgreSQL's jsonb would parse and re-encode a few MB on each write.
    rows = models.TextField(help_text="The rows that passed the preview's checks (JSON).")
    invalid_rows = models.TextField(default="[]", help_text="[row number, errors] (JSON).")

    def __str__(self):
        return f"import of {self.file_name or 'a file'} by user {self.created_by_id}"


class ConsentTopic(TimestampedModel):
    """A subscription type people opt in to, e.g. newsletter or product updates.

    Transactional mail is not a topic: it needs no consent and is a separate category.
    """

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ConsentText(AppendOnlyModel):
    """One version of the exact wording shown when asking for consent."""

    topic = models.ForeignKey(ConsentTopic, on_delete=models.PROTECT, related_name="texts")
    version = models.PositiveIntegerField()
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["topic", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "version"], name="consenttext_version_unique")
        ]

    def __str__(self):
        return f"{self.topic.key} v{self.version}"

    def save(self, *args, **kwargs):
        self.text_sha256 = hashlib.sha256(self.text.encode()).hexdigest()
        super().save(*args, **kwargs)


class ConsentEntry(AppendOnlyModel):
    """One grant or withdrawal; a contact's current consent is their latest entry per topic."""

    class LawfulBasis(models.TextChoices):
        CONSENT = "consent", "Consent"
        SOFT_OPT_IN = "soft_opt_in", "Soft opt-in (existing customer)"
        IMPLIED = "implied", "Implied consent (CASL)"
        LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"

    class Method(models.TextChoices):
        FORM = "form", "Web form"
        DOUBLE_OPT_IN = "double_opt_in", "Double opt-in"
        IMPORT = "import", "Import"
        API = "api", "API"
        ADMIN = "admin", "Staff in the admin"
        PREFERENCE_CENTRE = "preference_centre", "Preference centre"
        ONE_CLICK = "one_click", "One-click unsubscribe"
        ESP = "esp", "Email provider event"
        SYSTEM = "system", "System rule"

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="consent_entries")
    topic = models.ForeignKey(ConsentTopic, on_delete=models.PROTECT, related_name="entries")
    is_granted = models.BooleanField()
    email_at_time = models.EmailField(max_length=254)
    lawful_basis = models.CharField(max_length=30, choices=LawfulBasis, default=LawfulBasis.CONSENT)
    method = models.CharField(max_length=30, choices=Method)
    source = models.CharField(
        max_length=300, help_text="Where it happened: the form, file, API key or page."
    )
    consent_text = models.ForeignKey(
        ConsentText,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        help_text="The exact wording the person saw.",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "consent entries"
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["contact", "topic", "-occurred_at", "-id"])]

    def __str__(self):
        verb = "granted" if self.is_granted else "withdrawn"
        return f"{self.topic.key} {verb} ({self.get_method_display()})"


class CurrentConsent(models.Model):
    """A contact's current consent for one topic: their latest ledger entry, projected.

    The ledger (ConsentEntry) is the proof; this table is what reads use, one row per
    (contact, topic) instead of "the latest of many" per contact. A database trigger
    on every ledger INSERT writes it (migration `0009_current_consent`), so it changes
    in the same statement as the append, whatever path appended: services, bulk
    imports, raw SQL. Code never writes it; erasure deletes it with the ledger rows.
    """

    # No single-column indexes: the unique (contact, topic) and the (topic, …) index cover them.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="current_consents", db_index=False
    )
    topic = models.ForeignKey(
        ConsentTopic, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    entry = models.OneToOneField(ConsentEntry, on_delete=models.CASCADE, related_name="current_for")
    is_granted = models.BooleanField()
    occurred_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "current consents"
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "topic"], name="currentconsent_contact_topic_unique"
            ),
        ]
        indexes = [
            # "Who is granted topic T": an index-only scan for segments and the send gate.
            models.Index(
                fields=["topic", "is_granted", "contact"], name="currentconsent_topic_idx"
            ),
        ]

    def __str__(self):
        verb = "granted" if self.is_granted else "withdrawn"
        return f"{self.contact_id} {verb} {self.topic_id}"


class Suppression(models.Model):
    """An address we must not send marketing to; it outlives the contact.

    Looked up by `email_hash` (a keyed hash of the normalised address), so an
    erased person stays suppressed even after their address is deleted.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed from all"
        MANUAL = "manual", "Added by staff"
        ERASED = "erased", "Erased on request"
        SOFT_BOUNCE = "soft_bounce", "Repeated soft bounces (temporary)"
        INACTIVE = "inactive", "Inactive (sunset policy)"

    email = models.EmailField(
        max_length=254, blank=True, default="", help_text="Empty once the person is erased."
    )
    email_hash = models.CharField(max_length=64, db_index=True)
    reason = models.CharField(max_length=20, choices=Reason)
    source = models.CharField(max_length=300)
    detail = models.TextField(blank=True, default="")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Only temporary suppressions end."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["email_hash", "reason"], name="suppression_email_reason_unique"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(reason="soft_bounce"),
                name="suppression_only_soft_bounce_expires",
            ),
        ]
        indexes = [models.Index(fields=["email"])]

    def __str__(self):
        return f"{self.email or '(erased)'}: {self.get_reason_display()}"


class SuppressionLift(AppendOnlyModel):
    """One suppression lifted: what it was, who or what lifted it, and why. Never edited.

    Keyed by the address's keyed hash, never the address, so it outlives an erasure
    like the suppression itself. The database refuses UPDATE (a trigger, as for the
    consent ledger) and refuses a staff lift of an objection (a check constraint).
    """

    class Via(models.TextChoices):
        STAFF = "staff", "Staff, with a reason"
        OWN_CONSENT = "own_consent", "The person's own new consent"

    email_hash = models.CharField(max_length=64, db_index=True)
    reason = models.CharField(
        max_length=20, choices=Suppression.Reason, help_text="The lifted suppression's reason."
    )
    suppression_source = models.CharField(max_length=300, blank=True, default="")
    suppressed_at = models.DateTimeField(help_text="When the lifted suppression was added.")
    via = models.CharField(max_length=20, choices=Via)
    note = models.TextField(help_text="Staff's reason, or the consent that lifted it.")
    consent_entry_pk = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The consent ledger entry that lifted it, if any."
    )
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,  # SET_NULL would be an UPDATE, which the trigger refuses
        null=True,
        blank=True,
        related_name="+",
    )
    lifted_at = models.DateTimeField()

    class Meta:
        ordering = ["-lifted_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(note=""), name="suppressionlift_has_reason"),
            # An objection (complaint, unsubscribe from all, erasure) is the person's to lift.
            models.CheckConstraint(
                condition=~Q(via="staff", reason__in=["complaint", "unsubscribed", "erased"]),
                name="suppressionlift_objection_not_by_staff",
            ),
            models.CheckConstraint(
                condition=~Q(via="staff", lifted_by__isnull=True),
                name="suppressionlift_staff_named",
            ),
        ]

    def __str__(self):
        return f"{self.get_reason_display()} lifted at {self.lifted_at:%Y-%m-%d %H:%M}"


# --- Deals ----------------------------------------------------------------------------------


class DealStage(models.Model):
    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    win_probability = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(100)], help_text="Percent chance that deals here close won."
    )
    outcome = models.CharField(max_length=4, choices=Outcome, default=Outcome.OPEN)

    class Meta:
        ordering = ["position", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(win_probability__lte=100), name="dealstage_probability_max_100"
            )
        ]

    def __str__(self):
        return self.name


class Deal(TimestampedModel):
    name = models.CharField(max_length=200)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals"
    )
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_deals",
    )
    stage = models.ForeignKey(DealStage, on_delete=models.PROTECT, related_name="deals")
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter currency code like EUR.")],
    )
    expected_close_on = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_not_negative")
        ]
        indexes = [models.Index(fields=["stage", "-created_at"])]

    def __str__(self):
        return self.name


# --- Activities: the event log and the bus between apps -------------------------------------


class Activity(models.Model):
    """Something a person did or that happened to them.

    `kind` is a slug from the documented vocabulary (Kind) or a custom one. Rows are
    never edited except to attach an anonymous visitor's history to the contact
    they turn out to be; the admin shows them read-only.
    """

    class Kind(models.TextChoices):
        PAGE_VIEWED = "page_viewed"
        FORM_SUBMITTED = "form_submitted"
        CONTENT_DOWNLOADED = "content_downloaded"
        DEMO_REQUESTED = "demo_requested"
        SIGNED_UP = "signed_up"
        PRODUCT_VIEWED = "product_viewed"
        CART_UPDATED = "cart_updated"
        CART_ABANDONED = "cart_abandoned"
        CHECKOUT_STARTED = "checkout_started"
        ORDER_PLACED = "order_placed"
        ONBOARDING_MILESTONE_REACHED = "onboarding_milestone_reached"
        EMAIL_SENT = "email_sent"
        EMAIL_DELIVERED = "email_delivered"
        EMAIL_OPENED = "email_opened"
        EMAIL_CLICKED = "email_clicked"
        EMAIL_BOUNCED = "email_bounced"
        EMAIL_COMPLAINED = "email_complained"
        UNSUBSCRIBED = "unsubscribed"
        CONSENT_GRANTED = "consent_granted"
        CONSENT_WITHDRAWN = "consent_withdrawn"
        LIFECYCLE_STAGE_CHANGED = "lifecycle_stage_changed"
        HANDED_OFF = "handed_off"
        DEAL_STAGE_CHANGED = "deal_stage_changed"
        NOTE_ADDED = "note_added"

    # No single-column indexes on kind and contact: the composite indexes below start
    # with each, and every index is written for every activity (three fewer made a
    # 40,000-row segment_entered INSERT ~30% faster at 1M, docs/performance.md).
    kind = models.SlugField(max_length=64, validators=[slug_key_validator], db_index=False)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        db_index=False,
    )
    anonymous_id = models.CharField(
        max_length=100, blank=True, default="", help_text="Visitor id before identification."
    )
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=50, help_text="Who reported it: api, web, esp, admin…")
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="activity_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(contact__isnull=False) | ~Q(anonymous_id=""),
                name="activity_has_contact_or_anonymous_id",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "kind", "-occurred_at"]),
            models.Index(fields=["contact", "-occurred_at"]),
            # Covers "kind K since T" with the contact too, so a segment's "at least N
            # times" or "did not" reads only this index (replaces kind, -occurred_at).
            models.Index(
                fields=["kind", "-occurred_at", "contact"], name="activity_kind_time_contact_idx"
            ),
            models.Index(
                fields=["anonymous_id"], condition=~Q(anonymous_id=""), name="activity_anon_idx"
            ),
        ]

    def __str__(self):
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"


# --- Work for people: tasks and notes -------------------------------------------------------


class Task(TimestampedModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="crm_tasks",
    )
    due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(
        max_length=100, blank=True, default="", help_text="What created it: staff, a rule…"
    )

    class Meta:
        ordering = ["status", "due_at", "-created_at"]
        indexes = [models.Index(fields=["owner", "status", "due_at"])]

    def __str__(self):
        return self.title


class Note(TimestampedModel):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="crm_notes",
    )
    body = models.TextField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.body[:60]


# --- API keys: how websites, apps and servers talk to the ingestion API ---------------------


class ApiKey(models.Model):
    """A named credential for the REST API; only a SHA-256 of the key is stored.

    Server keys may use the whole API. Browser keys are public (they sit in a web
    page), so they may only send behaviour events and identify visitors, and only
    from their allowed origins.
    """

    class Kind(models.TextChoices):
        SERVER = "server", "Server (full API)"
        BROWSER = "browser", "Browser (behaviour events and identify only)"

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. “Website” or “Shop”.")
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.SERVER)
    prefix = models.CharField(
        max_length=8,
        unique=True,
        editable=False,
        help_text="The key's first characters after ns_live_, to recognise it; not secret.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Browser keys: the sites allowed to use the key, e.g. https://www.example.com.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1)], help_text="Requests per minute."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__gte=1), name="apikey_rate_limit_positive"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"ns_live_{self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def source_label(self) -> str:
        """The Activity.source of what this key records: idempotency keys are per source."""
        return f"api:{self.prefix}"


# --- Segments: saved audiences built from conditions ----------------------------------------


def empty_segment_definition() -> dict:
    return {"match": "all", "conditions": []}


class Segment(TimestampedModel):
    """A saved audience: a tree of all / any / none groups over conditions.

    crm.segments validates and compiles the definition to one query; docs/segments.md
    describes its JSON. Membership is tracked in SegmentMembership so other apps can
    react to people entering and leaving (`segment_entered`, `segment_exited`).
    """

    key = models.SlugField(max_length=50, unique=True, validators=[slug_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_segments",
    )
    definition = models.JSONField(default=empty_segment_definition)
    member_count = models.PositiveIntegerField(default=0, editable=False)
    last_evaluated_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When every contact was last checked."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class SegmentMembership(models.Model):
    """A contact's place in a segment; kept after they leave, so re-entries are counted.

    `entry_count` numbers the entries: the idempotency keys of the segment_entered and
    segment_exited activities include it, so each entry and exit is recorded once.
    """

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="segment_memberships"
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    entry_count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-entered_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "contact"], name="segmentmembership_segment_contact_unique"
            ),
        ]
        indexes = [
            # Current members of a segment: the changelist filter and the API's member list.
            models.Index(
                fields=["segment", "contact"],
                condition=Q(exited_at__isnull=True),
                name="segmentmembership_current_idx",
            ),
        ]

    def __str__(self):
        return f"{self.contact_id} in {self.segment_id}"

    @property
    def is_current(self) -> bool:
        return self.exited_at is None


class SegmentCountSnapshot(models.Model):
    """A segment's member count after a full evaluation: the admin's count history."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="count_snapshots")
    counted_at = models.DateTimeField()
    member_count = models.PositiveIntegerField()
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0, help_text="How long the evaluation took.")

    class Meta:
        ordering = ["-counted_at", "-pk"]
        indexes = [models.Index(fields=["segment", "-counted_at"])]

    def __str__(self):
        return f"{self.segment_id}: {self.member_count} at {self.counted_at:%Y-%m-%d %H:%M}"


# --- Public pages and privacy requests ------------------------------------------------------


class ContactPreference(models.Model):
    """What a contact chose in the preference centre beyond per-topic consent.

    A pause is not a withdrawal: consent stays as it is and the send gate defers
    marketing until `paused_until`.
    """

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="preference")
    paused_until = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.contact_id}: paused until {self.paused_until or '-'}"


class ErasureRecord(models.Model):
    """Proof that a person was erased: who did it, when, and a keyed hash, never the address."""

    email_hash = models.CharField(max_length=64, db_index=True)
    contact_pk = models.PositiveBigIntegerField(help_text="The erased contact's former id.")
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    requested_via = models.CharField(max_length=100, help_text="admin, api…")
    deleted_counts = models.JSONField(
        default=dict, blank=True, help_text="How many rows of each kind were deleted."
    )
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self):
        return f"contact {self.contact_pk} erased at {self.erased_at:%Y-%m-%d %H:%M}"
