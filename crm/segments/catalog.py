"""The condition language's vocabulary: fields, their operators and the values they take.

One table for every condition in Nextstep (crm.conditions): segments, audiences,
branches and fit rules test a contact (`CONTACT_MODE`); triggers, goals, exits and
engagement rules test the activity being matched (`ACTIVITY_MODE`). The validator,
the SQL compiler, the Python evaluator and the builder widget all read this table,
so a field offered in the builder is always one both evaluators understand.
"""

from dataclasses import dataclass


class Kind:
    """What an operator's value looks like in the definition JSON."""

    NONE = "none"  # no value: "is empty"
    TEXT = "text"  # one piece of text
    TEXTS = "texts"  # a list of texts: countries, tag names
    CHOICES = "choices"  # a list of keys from the field's options
    CHOICE = "choice"  # one key from the field's options
    NUMBER = "number"
    RANGE = "range"  # [lowest, highest], both included
    DATE = "date"  # "YYYY-MM-DD"
    DAYS = "days"  # a whole number of days
    COUNT_IN_DAYS = "count_in_days"  # activity: "count" times, within "days" (optional)
    IN_DAYS = "in_days"  # activity: within "days" (optional: ever)


@dataclass(frozen=True)
class Operator:
    key: str
    label: str
    kind: str


@dataclass(frozen=True)
class Field:
    """A thing a condition tests. `params` are settings besides operator and value."""

    key: str
    label: str
    group: str
    operators: tuple[Operator, ...]
    options: str = ""  # which option list the builder offers (see segment_builder_options)
    params: tuple[str, ...] = ()
    help: str = ""
    noun: str = ""  # what one value is called in messages: "choose at least one {noun}"

    @property
    def value_noun(self) -> str:
        return self.noun or self.label.lower()

    def operator(self, key: str) -> Operator | None:
        return next((op for op in self.operators if op.key == key), None)


# --- Operator families ----------------------------------------------------------------------

IS_EMPTY = Operator("is_empty", "is empty", Kind.NONE)
IS_SET = Operator("is_set", "is set", Kind.NONE)

CHOICE_OPERATORS = (
    Operator("in", "is any of", Kind.CHOICES),
    Operator("not_in", "is none of", Kind.CHOICES),
)
TEXT_LIST_OPERATORS = (
    Operator("in", "is any of", Kind.TEXTS),
    Operator("not_in", "is none of", Kind.TEXTS),
    IS_EMPTY,
    IS_SET,
)
TEXT_OPERATORS = (
    Operator("equals", "is", Kind.TEXT),
    Operator("in", "is any of", Kind.TEXTS),
    Operator("not_in", "is none of", Kind.TEXTS),
    Operator("not_equals", "is not", Kind.TEXT),
    Operator("contains", "contains", Kind.TEXT),
    Operator("not_contains", "does not contain", Kind.TEXT),
    Operator("starts_with", "starts with", Kind.TEXT),
    Operator("ends_with", "ends with", Kind.TEXT),
    IS_EMPTY,
    IS_SET,
)
NUMBER_OPERATORS = (
    Operator("gte", "is at least", Kind.NUMBER),
    Operator("lte", "is at most", Kind.NUMBER),
    Operator("between", "is between", Kind.RANGE),
)
DATE_OPERATORS = (
    Operator("in_last_days", "in the last … days", Kind.DAYS),
    Operator("more_than_days_ago", "more than … days ago", Kind.DAYS),
    Operator("before", "before", Kind.DATE),
    Operator("on_or_after", "on or after", Kind.DATE),
)
PROPERTY_OPERATORS = (
    *TEXT_OPERATORS[:8],
    IS_SET,
    IS_EMPTY,
    Operator("gt", "is a number greater than", Kind.NUMBER),
    Operator("gte", "is a number at least", Kind.NUMBER),
    Operator("lt", "is a number less than", Kind.NUMBER),
    Operator("lte", "is a number at most", Kind.NUMBER),
    Operator("date_before", "is a date before", Kind.DATE),
    Operator("date_on_or_after", "is a date on or after", Kind.DATE),
    Operator("date_in_last_days", "is a date in the last … days", Kind.DAYS),
    Operator("date_in_next_days", "is a date in the next … days", Kind.DAYS),
    Operator("anniversary_in_next_days", "has its anniversary in the next … days", Kind.DAYS),
)

# --- Fields ---------------------------------------------------------------------------------

CONTACT = "Contact"
PROPERTY = "Custom properties"
CONSENT = "Consent"
BEHAVIOUR = "Behaviour"
DEALS = "Deals and purchases"
SEGMENTS = "Other segments"
COMPANY = "Company"
ACTIVITY = "The activity"


def _text_field(key: str, label: str) -> Field:
    return Field(key, label, CONTACT, TEXT_OPERATORS, help="Compared ignoring case.")


FIELDS: tuple[Field, ...] = (
    Field("lifecycle_stage", "Lifecycle stage", CONTACT, CHOICE_OPERATORS, "lifecycle_stages"),
    Field(
        "country",
        "Country",
        CONTACT,
        TEXT_LIST_OPERATORS,
        help="Two-letter codes such as DE, AT, CH.",
        noun="country code",
    ),
    *(
        Field(
            f"company_{name}",
            f"Company {label}",
            COMPANY,
            TEXT_OPERATORS,
            help="Compared ignoring case; people without a company have it empty.",
        )
        for name, label in (
            ("name", "name"),
            ("domain", "domain"),
            ("industry", "industry"),
            ("size", "size"),
            ("country", "country"),
        )
    ),
    Field("owner", "Owner", CONTACT, (*CHOICE_OPERATORS, IS_EMPTY, IS_SET), "owners"),
    Field("source", "Source", CONTACT, CHOICE_OPERATORS, "sources"),
    _text_field("entry_point", "Entry point (first touch)"),
    _text_field("email", "Email address"),
    Field(
        "email_domain",
        "Email domain",
        CONTACT,
        TEXT_OPERATORS,
        help="The part after @, compared ignoring case: example.com.",
    ),
    _text_field("first_name", "First name"),
    _text_field("last_name", "Last name"),
    _text_field("job_title", "Job title"),
    _text_field("language", "Language"),
    _text_field("time_zone", "Time zone"),
    _text_field("utm_source", "UTM source (first touch)"),
    _text_field("utm_medium", "UTM medium (first touch)"),
    _text_field("utm_campaign", "UTM campaign (first touch)"),
    Field(
        "tags",
        "Tags",
        CONTACT,
        (
            Operator("has_any", "has any of", Kind.TEXTS),
            Operator("has_all", "has all of", Kind.TEXTS),
            Operator("has_none", "has none of", Kind.TEXTS),
        ),
        "tags",
        noun="tag",
    ),
    Field("lead_score", "Lead score (total)", CONTACT, NUMBER_OPERATORS),
    Field("created_at", "Created", CONTACT, DATE_OPERATORS),
    Field("updated_at", "Last updated", CONTACT, DATE_OPERATORS),
    Field(
        "last_engaged_at",
        "Last engaged",
        CONTACT,
        (*DATE_OPERATORS, Operator("is_empty", "never", Kind.NONE), IS_SET),
        help="The last time the person did something themselves (not emails we sent).",
    ),
    Field(
        "lifecycle_stage_changed_at",
        "Stage last changed",
        CONTACT,
        (*DATE_OPERATORS, IS_EMPTY, IS_SET),
    ),
    Field(
        "property",
        "Custom property",
        PROPERTY,
        PROPERTY_OPERATORS,
        params=("key",),
        help="Dates are compared as YYYY-MM-DD; numbers as plain numbers such as 42 or 9.5.",
    ),
    Field(
        "consent",
        "Consent for topic",
        CONSENT,
        (
            Operator("granted", "is granted", Kind.NONE),
            Operator("not_granted", "is not granted (withdrawn or never asked)", Kind.NONE),
        ),
        "topics",
        params=("topic",),
    ),
    Field(
        "suppressed",
        "Email address suppressed",
        CONSENT,
        (Operator("is", "yes", Kind.NONE), Operator("is_not", "no", Kind.NONE)),
    ),
    Field(
        "activity",
        "Activity",
        BEHAVIOUR,
        (
            Operator("at_least", "did at least … times", Kind.COUNT_IN_DAYS),
            Operator("none", "did not do", Kind.IN_DAYS),
        ),
        "activity_kinds",
        params=("kind", "where", "count", "days"),
        help="Leave the days empty for 'ever'.",
    ),
    Field(
        "open_deal",
        "Open deal",
        DEALS,
        (
            Operator("any_stage", "in any stage", Kind.NONE),
            Operator("in_stage", "in stage", Kind.CHOICES),
        ),
        "deal_stages",
        noun="deal stage",
    ),
    Field(
        "won_deals_total",
        "Won deals total",
        DEALS,
        (Operator("gte", "is at least", Kind.NUMBER), Operator("lte", "is at most", Kind.NUMBER)),
        help="Sum of won deal amounts, whatever their currency.",
    ),
    Field(
        "days_since_purchase",
        "Last purchase (order or won deal)",
        DEALS,
        (
            Operator("in_last_days", "in the last … days", Kind.DAYS),
            Operator("more_than_days_ago", "more than … days ago", Kind.DAYS),
        ),
        help="People who never bought match neither.",
    ),
    # Purchase predictions (crm.predictions, docs/predictions.md): refitted daily.
    Field(
        "churn_risk",
        "Churn risk (%)",
        DEALS,
        (Operator("gte", "is at least", Kind.NUMBER), Operator("lte", "is at most", Kind.NUMBER)),
        help="0–100: the chance a customer has stopped buying. People without a prediction "
        "(no orders, or too little data) match neither.",
    ),
    Field(
        "predicted_value",
        "Predicted 12-month value",
        DEALS,
        (Operator("top_percent", "is in the top … % of customers", Kind.NUMBER),),
        help="Ranked among customers whose orders carry a total.",
    ),
    Field(
        "segment",
        "Segment",
        SEGMENTS,
        (
            Operator("in", "is in", Kind.CHOICE),
            Operator("not_in", "is not in", Kind.CHOICE),
        ),
        "segments",
    ),
)

FIELDS_BY_KEY = {field.key: field for field in FIELDS}

#: The activity being matched (a trigger's, goal's or exit's, an engagement rule's).
ACTIVITY_FIELDS: tuple[Field, ...] = (
    Field(
        "kind",
        "Activity kind",
        ACTIVITY,
        (
            Operator("in", "is any of", Kind.TEXTS),
            Operator("not_in", "is none of", Kind.TEXTS),
        ),
        "activity_kinds",
        noun="activity kind",
    ),
    Field(
        "property",
        "Activity property",
        ACTIVITY,
        PROPERTY_OPERATORS,
        params=("key",),
        help="Nested properties with dots: utm.campaign. Dates as YYYY-MM-DD; "
        "numbers as plain numbers such as 42 or 9.5.",
    ),
)
ACTIVITY_FIELDS_BY_KEY = {field.key: field for field in ACTIVITY_FIELDS}

CONTACT_MODE = "contact"
ACTIVITY_MODE = "activity"
MODES = {
    CONTACT_MODE: FIELDS_BY_KEY,
    ACTIVITY_MODE: ACTIVITY_FIELDS_BY_KEY,
}
#: What the builder's heading calls the things a mode's conditions select.
MODE_SUBJECTS = {CONTACT_MODE: "People", ACTIVITY_MODE: "Activities"}
#: Contact fields read from the contact row (and its company and tags): a single
#: contact is checked in Python without a query. The others need the database.
ROW_FIELDS = frozenset(
    {
        "lifecycle_stage",
        "country",
        "owner",
        "source",
        "entry_point",
        "email",
        "email_domain",
        "first_name",
        "last_name",
        "job_title",
        "language",
        "time_zone",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "tags",
        "lead_score",
        "created_at",
        "updated_at",
        "last_engaged_at",
        "lifecycle_stage_changed_at",
        "property",
        "company_name",
        "company_domain",
        "company_industry",
        "company_size",
        "company_country",
    }
)
#: The operators an activity's `where` conditions use: those of custom properties.
WHERE_OPERATORS = PROPERTY_OPERATORS
GROUP_MATCHES = {"all": "all of", "any": "any of", "none": "none of"}

#: Limits that keep a definition reviewable and its query reasonable.
MAX_DEPTH = 5
MAX_CONDITIONS = 100
MAX_VALUES = 200
MAX_DAYS = 3660
PROPERTY_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}$"
#: An activity's properties may be nested: `utm.campaign` reads {"utm": {"campaign": …}}.
PATH_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}(\.[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}){0,4}$"
SEGMENT_ACTIVITY_KINDS = ("segment_entered", "segment_exited")


def catalog_as_json(mode: str = CONTACT_MODE) -> dict:
    """The catalog of one mode as plain data for the builder's JavaScript."""
    fields = FIELDS if mode == CONTACT_MODE else ACTIVITY_FIELDS
    return {
        "mode": mode,
        "subject": MODE_SUBJECTS[mode],
        "noun": "segment" if mode == CONTACT_MODE else "condition",
        "groups": GROUP_MATCHES,
        "fields": [
            {
                "key": field.key,
                "label": field.label,
                "group": field.group,
                "options": field.options,
                "params": list(field.params),
                "help": field.help,
                "operators": [
                    {"key": op.key, "label": op.label, "kind": op.kind} for op in field.operators
                ],
            }
            for field in fields
        ],
        "where_operators": [
            {"key": op.key, "label": op.label, "kind": op.kind} for op in WHERE_OPERATORS
        ],
        "limits": {"depth": MAX_DEPTH, "conditions": MAX_CONDITIONS, "days": MAX_DAYS},
    }
