"""Request and response shapes of the API. Serializers check input; services write."""

import datetime
import json
import re
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator, validate_email
from django.utils import timezone
from rest_framework import serializers

from crm.models import (
    Activity,
    Company,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStage,
    country_code_validator,
    validate_time_zone,
)
from crm.predictions.serializers import ContactPredictionSerializer
from crm.services.events import EventStatus, IncomingEvent
from crm.services.identity import PersonRef

K = Activity.Kind

MAX_EVENTS_PER_REQUEST = 1000
MAX_PROPERTIES_BYTES = 16 * 1024
#: Clocks drift and time zones get mixed up, but a day ahead is a bug, not drift.
MAX_FUTURE = datetime.timedelta(days=1)

#: Kinds Nextstep records itself when the change happens (with its ledger or history
#: row), so no key may send them as events.
SYSTEM_KINDS = frozenset(
    {
        K.CONSENT_GRANTED,
        K.CONSENT_WITHDRAWN,
        K.UNSUBSCRIBED,
        K.LIFECYCLE_STAGE_CHANGED,
        K.HANDED_OFF,
        K.DEAL_STAGE_CHANGED,
        K.NOTE_ADDED,
        "identified",
        "segment_entered",
        "segment_exited",
    }
)
#: What a browser key may send: things a visitor does on a web page, which the page can
#: see. Anyone can read a browser key, so business facts (order_placed, signed_up,
#: deal_*, email events, custom kinds) need a server key; a site may allow some custom
#: kinds with API_BROWSER_EVENT_KINDS (docs/security.md).
BROWSER_EVENT_KINDS = frozenset(
    {
        K.PAGE_VIEWED,
        K.FORM_SUBMITTED,
        K.CONTENT_DOWNLOADED,
        K.DEMO_REQUESTED,
        K.PRODUCT_VIEWED,
        K.CART_UPDATED,
        K.CHECKOUT_STARTED,
    }
)


def browser_event_kinds() -> frozenset[str]:
    """The kinds a browser key may send: behaviour, plus the custom kinds settings allow."""
    return BROWSER_EVENT_KINDS | (frozenset(settings.API_BROWSER_EVENT_KINDS) - SYSTEM_KINDS)


#: Contact fields events and identify never set, with where to change them instead.
CONSENT_REFUSAL = (
    "Consent is only given by the person (forms, preference centre), never by the API."
)
PROTECTED_FIELDS = {
    "consent": CONSENT_REFUSAL,
    "consents": CONSENT_REFUSAL,
    "owner": "Set the owner with PATCH /api/v1/contacts/{id}/ and a server key.",
    "lifecycle_stage": "Move the stage with PATCH /api/v1/contacts/{id}/ and a server key.",
    "lead_score": "The score comes from scoring rules; it cannot be set.",
    "score": "The score comes from scoring rules; it cannot be set.",
}

#: Named EventStatusEnum in the OpenAPI schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
EVENT_STATUSES = [event_status.value for event_status in EventStatus]

#: A country code as the model stores it, or "" (unknown): the schema shows the pattern.
optional_country_validator = RegexValidator(
    r"^([A-Z]{2})?$", "Use a two-letter ISO country code in capitals, such as DE or US."
)

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$",
    "Use a lower-case slug such as page_viewed: letters, digits, '-' and '_'.",
)


def json_size(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def validate_properties_size(value: dict) -> dict:
    size = json_size(value)
    if size > MAX_PROPERTIES_BYTES:
        raise serializers.ValidationError(
            f"Properties are {size:,} bytes as JSON; the limit is {MAX_PROPERTIES_BYTES:,}."
        )
    return value


class StrictSerializer(serializers.Serializer):
    """Refuse fields it does not know, so a typo is an error instead of silently ignored."""

    def to_internal_value(self, data):
        unknown = self._unknown_field_errors(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def _unknown_field_errors(self, data) -> dict[str, list[str]]:
        if not isinstance(data, dict):
            return {}
        known = ", ".join(self.fields)
        return {
            name: [PROTECTED_FIELDS.get(name) or f"Unknown field; expected one of: {known}."]
            for name in data
            if name not in self.fields
        }


class PropertiesField(serializers.DictField):
    """A JSON object of custom data, at most MAX_PROPERTIES_BYTES once serialised."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validators", [validate_properties_size])
        super().__init__(**kwargs)


# --- Errors ---------------------------------------------------------------------------------


class ApiErrorSerializer(serializers.Serializer):
    """Every error response: a stable code, a sentence, and per-field reasons."""

    error = serializers.CharField(help_text="A stable code, e.g. invalid, key_revoked, throttled.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Reasons per dotted field path, e.g. {"context.ip": ["Enter a valid IP."]}.',
    )
    retry_after = serializers.IntegerField(
        required=False, help_text="429 only: seconds until the key may send again."
    )


# --- Events ---------------------------------------------------------------------------------


class EventContextSerializer(StrictSerializer):
    """Where the event happened. Stored on the activity under properties.context."""

    ip = serializers.IPAddressField(required=False)
    user_agent = serializers.CharField(max_length=500, required=False, allow_blank=True)
    # Any text, not URLField: a page view is never refused over an unusual address.
    page_url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    page_title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)
    utm_source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_medium = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_campaign = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_term = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_content = serializers.CharField(max_length=200, required=False, allow_blank=True)


class EventSerializer(StrictSerializer):
    """One thing a person did. Say who with email, external_id or anonymous_id."""

    needs_one_of = ("email", "external_id", "anonymous_id")

    type = serializers.CharField(
        max_length=64,
        validators=[slug_validator],
        help_text="A kind from the event vocabulary (page_viewed, demo_requested, …) "
        "or your own slug.",
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    external_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Your app's user id."
    )
    anonymous_id = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="A visitor's cookie id."
    )
    occurred_at = serializers.DateTimeField(
        required=False, help_text="ISO 8601 with an offset; defaults to now."
    )
    properties = PropertiesField(required=False, help_text="Up to 16 KB as JSON.")
    idempotency_key = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Sending the same key again (with the same API key) records nothing new.",
    )
    context = EventContextSerializer(required=False)

    def validate_type(self, value: str) -> str:
        if value in SYSTEM_KINDS:
            raise serializers.ValidationError(
                f"{value} is recorded by Nextstep itself when it happens; it cannot be sent."
            )
        return value

    def validate_occurred_at(self, value: datetime.datetime) -> datetime.datetime:
        if value > timezone.now() + MAX_FUTURE:
            raise serializers.ValidationError(
                "This is more than a day in the future; send UTC or include the offset."
            )
        return value

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("email") or attrs.get("external_id") or attrs.get("anonymous_id")):
            raise serializers.ValidationError(
                {"email": ["Say who did it: give email, external_id or anonymous_id."]}
            )
        return attrs


class CommonEventShape:
    """EventSerializer's result for the common event, without DRF's per-field machinery.

    An event of plain ASCII strings, an optional `occurred_at` and a small `properties`
    object, naming who did it, is checked here with the serializer's own rules and comes
    back as the dict run_validation() would return. Anything else (a `context`, a wrong
    type, a value DRF would refuse or change beyond trimming, a non-ASCII string) returns
    None, and the caller validates it with EventSerializer, whose errors the sender gets.
    DRF's Serializer.run_validation cost ~0.25 ms of CPU an event, a third of a
    1,000-event request (docs/performance.md); this costs a few microseconds. The two
    agree on every input (tests/crm/api/test_event_fast_path.py).
    """

    LIMITS = {"email": 254, "external_id": 200, "anonymous_id": 100, "idempotency_key": 200}
    KNOWN = frozenset({"type", *LIMITS, "occurred_at", "properties"})
    _type_pattern = re.compile(r"[a-z0-9][a-z0-9_-]*")

    def __init__(self):
        # One per request: "now" for the future check is the request's start.
        self._occurred_at = EventSerializer().fields["occurred_at"]
        self._zone = self._occurred_at.default_timezone()
        self._latest = timezone.now() + MAX_FUTURE
        self._emails_checked: set[str] = set()

    def __call__(self, item) -> dict | None:
        if type(item) is not dict or not item.keys() <= self.KNOWN:
            return None
        kind = item.get("type")
        if (
            type(kind) is not str
            or len(kind) > 64
            or not self._type_pattern.fullmatch(kind)
            or kind in SYSTEM_KINDS
        ):
            return None
        data = {"type": kind}
        for name, limit in self.LIMITS.items():
            if name not in item:
                continue
            value = item[name]
            if type(value) is not str or not value.isascii() or "\x00" in value:
                return None
            value = value.strip()
            if len(value) > limit:
                return None
            data[name] = value
        if not (data.get("email") or data.get("external_id") or data.get("anonymous_id")):
            return None
        email = data.get("email")
        if email and email not in self._emails_checked:
            # Length, NUL and surrogates are checked above; this is EmailField's own rule.
            try:
                validate_email(email)
            except DjangoValidationError:
                return None
            self._emails_checked.add(email)
        if "properties" in item:
            properties = item["properties"]
            if type(properties) is not dict or not all(type(k) is str for k in properties):
                return None
            if properties and json_size(properties) > MAX_PROPERTIES_BYTES:
                return None
            data["properties"] = dict(properties)
        if "occurred_at" in item:
            if type(item["occurred_at"]) is not str:
                return None
            # What DateTimeField does for an ISO 8601 string with an offset (parse_datetime
            # tries fromisoformat first); a naive time goes to the serializer.
            try:
                occurred_at = datetime.datetime.fromisoformat(item["occurred_at"])
                if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
                    return None
                occurred_at = occurred_at.astimezone(self._zone)
            except (ValueError, OverflowError):
                return None
            if occurred_at > self._latest:
                return None
            data["occurred_at"] = occurred_at
        return data


class EventBatchSerializer(StrictSerializer):
    events = serializers.ListField(
        child=EventSerializer(),
        min_length=1,
        max_length=MAX_EVENTS_PER_REQUEST,
        help_text=f"1 to {MAX_EVENTS_PER_REQUEST:,} events, each validated on its own.",
    )


def incoming_event(data: dict) -> IncomingEvent:
    """Turn a validated event into what events_ingest records."""
    context = data.get("context") or {}
    properties = dict(data.get("properties") or {})
    if context:
        properties["context"] = context
    return IncomingEvent(
        kind=data["type"],
        person=PersonRef(
            email=data.get("email", ""),
            external_id=data.get("external_id", ""),
            anonymous_id=data.get("anonymous_id", ""),
            first_touch=first_touch(context),
        ),
        occurred_at=data.get("occurred_at"),
        properties=properties,
        idempotency_key=data.get("idempotency_key", ""),
    )


def first_touch(context: dict) -> dict[str, str]:
    """Attribution for a contact created now: the page, and UTM tags (or the page's own)."""
    if not context:
        return {}  # most events: no URL to parse (urlsplit + parse_qs per event otherwise)
    page_url = context.get("page_url", "")
    query = parse_qs(urlsplit(page_url).query)
    touch = {"entry_point": page_url}
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        touch[name] = context.get(name) or (query.get(name) or [""])[0]
    return {name: value for name, value in touch.items() if value}


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The event's position in the request, from 0.")
    status = serializers.ChoiceField(
        choices=EVENT_STATUSES,
        help_text="recorded, duplicate (server keys); accepted (browser keys, which are "
        "never told who is known); invalid; forbidden (not for this key).",
    )
    activity_id = serializers.IntegerField(required=False, help_text="recorded only.")
    contact_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="recorded only; null while anonymous."
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="invalid and forbidden only: reasons per field.",
    )


class EventsResponseSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Idempotency keys seen before.")
    accepted = serializers.IntegerField(help_text="Browser keys: events taken (see status).")
    invalid = serializers.IntegerField()
    forbidden = serializers.IntegerField(help_text="Events this key may not send.")
    results = EventResultSerializer(many=True, help_text="One per event, in request order.")


class EventsRejectedSerializer(ApiErrorSerializer):
    """A 400 or 403: the request was malformed, or no event in it could be taken."""

    recorded = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    accepted = serializers.IntegerField(required=False)
    invalid = serializers.IntegerField(required=False)
    forbidden = serializers.IntegerField(required=False)
    results = EventResultSerializer(many=True, required=False)


# --- Identify -------------------------------------------------------------------------------


class IdentifyTraitsSerializer(StrictSerializer):
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    job_title = serializers.CharField(max_length=150, required=False, allow_blank=True)
    country = serializers.CharField(
        max_length=2,
        required=False,
        allow_blank=True,
        validators=[country_code_validator],
        help_text="ISO code such as DE.",
    )
    time_zone = serializers.CharField(
        max_length=64, required=False, allow_blank=True, validators=[validate_time_zone]
    )
    language = serializers.CharField(max_length=16, required=False, allow_blank=True)
    properties = PropertiesField(required=False, help_text="Custom data, merged key by key.")

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("country"), str):
            data = {**data, "country": data["country"].upper()}
        return super().to_internal_value(data)


class IdentifySerializer(StrictSerializer):
    """Tie a visitor (anonymous_id) to a person (email or external_id) and update traits."""

    needs_one_of = ("email", "external_id")

    anonymous_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    traits = IdentifyTraitsSerializer(required=False)
    context = EventContextSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("email") or attrs.get("external_id")):
            raise serializers.ValidationError(
                {
                    "email": [
                        "Give an email or an external_id: an anonymous id or an IP address "
                        "alone never identifies a person."
                    ]
                }
            )
        return attrs


class IdentifyAcceptedSerializer(serializers.Serializer):
    """A browser key's answer: the same whether or not anyone is known."""

    status = serializers.ChoiceField(choices=["accepted"])


class IdentifyResponseSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    created = serializers.BooleanField(help_text="A new contact was created.")
    merged_activity_count = serializers.IntegerField(
        help_text="Earlier anonymous activities that now belong to the contact."
    )
    changed_fields = serializers.ListField(child=serializers.CharField())


# --- Contacts, companies, deals -------------------------------------------------------------


def staff_users():
    return get_user_model().objects.filter(is_active=True, is_staff=True)


class ContactSerializer(serializers.ModelSerializer):
    company = serializers.IntegerField(source="company_id", read_only=True, allow_null=True)
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    lifecycle_stage = serializers.CharField(source="lifecycle_stage_id", read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = Contact
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "job_title",
            "country",
            "country_source",
            "time_zone",
            "language",
            "lifecycle_stage",
            "lifecycle_stage_changed_at",
            "source",
            "entry_point",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "owner",
            "tags",
            "properties",
            "external_id",
            "lead_score",
            "last_engaged_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ContactDetailSerializer(ContactSerializer):
    """One contact, with its purchase prediction (null without orders; see docs/predictions.md)."""

    prediction = ContactPredictionSerializer(read_only=True, allow_null=True)

    class Meta(ContactSerializer.Meta):
        fields = (*ContactSerializer.Meta.fields, "prediction")
        read_only_fields = fields


class ContactProfileSerializer(StrictSerializer):
    """Profile fields both creating and changing a contact accept."""

    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    company = serializers.PrimaryKeyRelatedField(
        queryset=Company.objects.all(), required=False, allow_null=True
    )
    job_title = serializers.CharField(max_length=150, required=False, allow_blank=True)
    country = serializers.CharField(
        max_length=2, required=False, allow_blank=True, validators=[optional_country_validator]
    )
    country_source = serializers.ChoiceField(
        choices=Contact.CountrySource.choices, required=False, allow_blank=True
    )
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    language = serializers.CharField(max_length=16, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=staff_users(), required=False, allow_null=True, help_text="A staff user's id."
    )
    properties = PropertiesField(required=False, help_text="Merged key by key.")


class ContactCreateSerializer(ContactProfileSerializer):
    """Create a contact, or update the one with this email (an upsert)."""

    email = serializers.EmailField(max_length=254)
    lifecycle_stage = serializers.SlugRelatedField(
        slug_field="key",
        queryset=LifecycleStage.objects.all(),
        required=False,
        help_text="New contacts only; move existing ones with PATCH.",
    )
    tags = serializers.ListField(
        # Blank names are dropped when the tags are added, not refused.
        child=serializers.CharField(max_length=60, allow_blank=True),
        required=False,
        help_text="Added, never removed.",
    )
    entry_point = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_medium = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_campaign = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ContactUpdateSerializer(ContactProfileSerializer):
    """Change a contact: given fields are set (empty clears), the stage moves with a reason."""

    email = serializers.EmailField(max_length=254, required=False)
    lifecycle_stage = serializers.SlugRelatedField(
        slug_field="key", queryset=LifecycleStage.objects.all(), required=False
    )
    lifecycle_stage_reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Why the stage moved."
    )


class ContactUnsubscribeSerializer(StrictSerializer):
    """Withdraw one topic, or every topic plus an `unsubscribed` suppression."""

    topic = serializers.CharField(
        max_length=50, required=False, help_text="A consent topic's key, e.g. newsletter."
    )
    all = serializers.BooleanField(
        required=False, help_text="true: withdraw every topic and suppress all marketing."
    )

    def validate_topic(self, value: str) -> ConsentTopic:
        # Inactive topics may still be withdrawn: withdrawing is never refused.
        topic = ConsentTopic.objects.filter(key=value).first()
        if topic is None:
            raise serializers.ValidationError(f"Unknown consent topic {value!r}.")
        return topic

    def validate(self, attrs: dict) -> dict:
        if "all" in attrs and not attrs["all"]:
            raise serializers.ValidationError({"all": ["Send true, or leave it out."]})
        if ("topic" in attrs) == ("all" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": ['Send either {"topic": "<key>"} or {"all": true}.']}
            )
        return attrs


class TopicConsentSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="The topic's key.")
    granted = serializers.BooleanField()
    method = serializers.CharField(
        allow_null=True, help_text="How the latest change was made; null: never asked."
    )
    occurred_at = serializers.DateTimeField(allow_null=True)


class ContactConsentStateSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    topics = TopicConsentSerializer(many=True)
    suppressions = serializers.ListField(
        child=serializers.CharField(), help_text="Reasons of the address's active suppressions."
    )


class CompanySerializer(serializers.ModelSerializer):
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    # Declared so the schema's enum includes "" (not known), which the model allows.
    size = serializers.ChoiceField(choices=Company.Size.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Company
        fields = (
            "id",
            "name",
            "domain",
            "size",
            "industry",
            "country",
            "owner",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class CompanyUpsertSerializer(StrictSerializer):
    """Create a company, or update the one with this domain (or this name, without one)."""

    needs_one_of = ("name", "domain")

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    domain = serializers.CharField(max_length=253, required=False, allow_blank=True)
    size = serializers.ChoiceField(choices=Company.Size.choices, required=False, allow_blank=True)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(
        max_length=2, required=False, allow_blank=True, validators=[optional_country_validator]
    )
    owner = serializers.PrimaryKeyRelatedField(
        queryset=staff_users(), required=False, allow_null=True
    )

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("name") or attrs.get("domain")):
            raise serializers.ValidationError({"name": ["Give a name or a domain."]})
        return attrs


class DealSerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="contact_id", read_only=True, allow_null=True)
    company = serializers.IntegerField(source="company_id", read_only=True, allow_null=True)
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    stage = serializers.SlugRelatedField(slug_field="key", read_only=True)
    outcome = serializers.CharField(source="stage.outcome", read_only=True)

    class Meta:
        model = Deal
        fields = (
            "id",
            "name",
            "contact",
            "company",
            "owner",
            "stage",
            "outcome",
            "amount",
            "currency",
            "expected_close_on",
            "closed_at",
            "lost_reason",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class DealCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    stage = serializers.SlugRelatedField(slug_field="key", queryset=DealStage.objects.all())
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), required=False, allow_null=True
    )
    company = serializers.PrimaryKeyRelatedField(
        queryset=Company.objects.all(), required=False, allow_null=True
    )
    owner = serializers.PrimaryKeyRelatedField(
        queryset=staff_users(), required=False, allow_null=True
    )
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)
    currency = serializers.CharField(max_length=3, required=False)
    expected_close_on = serializers.DateField(required=False, allow_null=True)
    lost_reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class DealMoveSerializer(StrictSerializer):
    """Move a deal to another stage; a lost stage needs lost_reason."""

    stage = serializers.SlugRelatedField(slug_field="key", queryset=DealStage.objects.all())
    lost_reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
