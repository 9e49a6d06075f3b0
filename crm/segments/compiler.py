"""Compile a segment definition to one `Q` over Contact.

Everything that is not a column of the contact row (tags, activities, deals, consent,
suppressions) becomes an Exists, so the main query never joins a many-valued table:
counting a segment is one query whatever its shape, and the same Q can be annotated
per segment to check many segments in one query.

The SQL is set-based, because at 1M contacts / 10M activities anything evaluated once
per contact costs seconds (docs/segments.md, Performance):
- every subquery is a plain EXISTS over an indexed table, which PostgreSQL turns into
  a semi-join (an anti-join under NOT) or, nested inside OR, a hashed lookup;
- "at least N times" groups the activities once (`GROUP BY contact_id HAVING COUNT(*)
  >= N`) instead of probing each contact's N-th row;
- current consent reads the CurrentConsent projection, one row per (contact, topic).

Conditions on JSON properties and on subqueries can be NULL in SQL; `_definitely`
turns NULL into false, so that "none of" (NOT) means what it says.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import and_, or_
from typing import Any

from django.contrib.auth import get_user_model
from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import compile_json_path
from django.db.models.functions import Cast, Coalesce, Length, Lower, StrIndex, Substr
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Regex,
)
from django.utils import timezone

from crm.models import Activity, ConsentTopic, Contact, Deal, DealStage, Segment
from crm.predictions.models import ContactPrediction
from crm.segments.validation import cycle_message
from crm.selectors import consent_granted_exists, contact_is_suppressed_expression

#: A number written plainly (42, -3, 9.5): the only text a number comparison reads.
NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
#: An ISO date, or a datetime starting with one: compared as its first 10 characters.
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
ORDER_KIND = Activity.Kind.ORDER_PLACED
NOBODY = Q(pk__in=[])
#: Not Q(): an empty Q negates to itself, so "none of" it would still match everyone.
EVERYONE = Q(pk__isnull=False)


class SegmentCompileError(Exception):
    """The definition names something that no longer exists, or segments form a circle."""


@dataclass
class CompileContext:
    """What compiling needs besides the tree: the clock, and lookups loaded at most once."""

    # A lambda, so a patched clock (tests) is read at call time.
    now: datetime.datetime = field(default_factory=lambda: timezone.now())
    definitions: dict[str, Any] | None = None
    topic_ids: dict[str, int] | None = None
    #: True when the query reads everyone (a count, a preview, a full evaluation), false
    #: when it checks a few given contacts (a refresh, one contact's match). Inside an
    #: "any of" group the two want different SQL for "did X": see `_activity`.
    whole_table: bool = False
    _stack: list[str] = field(default_factory=list)
    #: How many "any of" groups enclose the condition being compiled.
    _any_depth: int = 0

    @property
    def today(self) -> datetime.date:
        return timezone.localdate(self.now)

    def days_ago(self, days: int) -> datetime.datetime:
        return self.now - datetime.timedelta(days=days)

    def definition_of(self, key: str) -> Any:
        if self.definitions is None:
            self.definitions = dict(Segment.objects.values_list("key", "definition"))
        if key not in self.definitions:
            raise SegmentCompileError(f"There is no segment {key!r}.")
        return self.definitions[key]

    def topic_id(self, key: str) -> int:
        if self.topic_ids is None:
            self.topic_ids = dict(ConsentTopic.objects.values_list("key", "pk"))
        if key not in self.topic_ids:
            raise SegmentCompileError(f"There is no consent topic {key!r}.")
        return self.topic_ids[key]


def compile_definition(definition: Any, *, context: CompileContext | None = None) -> Q:
    """Return the Q that selects the contacts the definition describes."""
    return _node(definition, context or CompileContext())


def compile_activity_definition(definition: Any, *, context: CompileContext | None = None) -> Q:
    """Return the Q over Activity that selects the activities an activity-mode tree matches."""
    return _node(definition, context or CompileContext(), ACTIVITY_CONDITIONS)


def compile_segment(segment: Segment, *, context: CompileContext | None = None) -> Q:
    """Return the Q for a saved segment (its own key guards against circles)."""
    context = context or CompileContext()
    return _in_segment(segment.key, segment.definition, context)


# --- Groups ---------------------------------------------------------------------------------


def _node(node: dict, context: CompileContext, conditions: dict | None = None) -> Q:
    conditions = CONDITIONS if conditions is None else conditions
    if "match" in node:
        return _group(node, context, conditions)
    compile_condition = conditions.get(node.get("field"))
    if compile_condition is None:
        raise SegmentCompileError(f"Unknown condition {node.get('field')!r}.")
    return compile_condition(node, context)


def _group(node: dict, context: CompileContext, conditions: dict | None = None) -> Q:
    inside_any = int(node["match"] == "any")
    context._any_depth += inside_any
    try:
        parts = [_node(child, context, conditions) for child in node.get("conditions") or []]
    finally:
        context._any_depth -= inside_any
    if node["match"] == "all":
        return reduce(and_, parts, Q())
    if not parts:
        return Q() if node["match"] == "none" else NOBODY
    if node["match"] == "none":
        # NOT a AND NOT b, not NOT (a OR b): each NOT EXISTS then stands alone in the
        # WHERE, where PostgreSQL makes it an anti-join. Equal, as no part is ever NULL.
        return reduce(and_, (~part for part in parts))
    return reduce(or_, parts)


def _in_segment(key: str, definition: Any, context: CompileContext) -> Q:
    if key in context._stack:
        raise SegmentCompileError(cycle_message([*context._stack, key]))
    context._stack.append(key)
    try:
        return _node(definition, context)
    finally:
        context._stack.pop()


# --- SQL building blocks --------------------------------------------------------------------


class JsonText(Func):
    """A top-level key of a JSON column as text, the same on SQLite and PostgreSQL.

    NULL when the key is missing or JSON null; true/false as 'true'/'false'; numbers
    as written. Django's KeyTextTransform differs between the two databases for null
    and booleans, and the segment must count the same on both.
    """

    output_field = TextField()

    def __init__(self, column: str, key: str):
        super().__init__(F(column))
        self.key = key
        # Activity properties may be nested: "utm.campaign" (validation allows dots
        # only there; a contact's property names have none).
        self.path = key.split(".")

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError("Segments support SQLite and PostgreSQL only.")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        if len(self.path) > 1:
            return f"({sql} #>> %s::text[])", (*params, self.path)
        return f"({sql} ->> %s)", (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        path = compile_json_path(self.path)
        text = (
            f"(CASE JSON_TYPE({sql}, %s) WHEN 'null' THEN NULL WHEN 'true' THEN 'true' "
            f"WHEN 'false' THEN 'false' ELSE CAST(JSON_EXTRACT({sql}, %s) AS TEXT) END)"
        )
        return text, (*params, path, *params, path)


def _json_number(text: JsonText) -> Case:
    """The text as a number when it is written as one, else NULL (never a cast error)."""
    return Case(
        When(Regex(text, NUMBER_PATTERN), then=Cast(text, FloatField())),
        default=None,
        output_field=FloatField(),
    )


def _definitely(predicate) -> Q:
    """A predicate that is never NULL: unknown counts as false, so NOT works as expected."""
    return Q(Coalesce(predicate, Value(False), output_field=BooleanField()))


def _start_of(day: str) -> datetime.datetime:
    """Midnight at the start of a YYYY-MM-DD day in the current time zone."""
    date = datetime.date.fromisoformat(day)
    return timezone.make_aware(datetime.datetime.combine(date, datetime.time.min))


class ContactIn(Expression):
    """Is the contact among the `contact_id`s a grouped (GROUP BY … HAVING) query returns?

    PostgreSQL: `EXISTS (SELECT 1 FROM (<grouped>) AS g WHERE g.contact_id = pk)`. Its
    planner pulls that EXISTS up into a semi-join (an anti-join under NOT) over one
    aggregation, and inside OR or CASE it either hashes the aggregation once or probes it
    per contact with the condition pushed into the GROUP BY (an index range scan). A
    plain `pk IN (<grouped>)` has no anti-join, and under NOT it falls back to scanning
    the whole list for every contact once the list outgrows work_mem.
    SQLite: `pk IN (<grouped>)`, which it materialises once per statement.
    The grouped query must never return NULL (`contact_id IS NOT NULL`).
    """

    output_field = BooleanField()

    def __init__(self, grouped: QuerySet):
        super().__init__()
        self.outer = F("pk")
        self.grouped = Subquery(grouped.values("contact_id"))

    def get_source_expressions(self):
        return [self.outer, self.grouped]

    def set_source_expressions(self, expressions):
        self.outer, self.grouped = expressions

    def as_sql(self, compiler, connection, **extra_context):
        outer_sql, outer_params = compiler.compile(self.outer)
        grouped_sql, grouped_params = compiler.compile(self.grouped)
        return f"{outer_sql} IN {grouped_sql}", (*outer_params, *grouped_params)

    def as_postgresql(self, compiler, connection, **extra_context):
        outer_sql, outer_params = compiler.compile(self.outer)
        grouped_sql, grouped_params = compiler.compile(self.grouped)
        sql = (
            f"EXISTS (SELECT 1 FROM {grouped_sql} AS grouped "
            f"WHERE grouped.contact_id = {outer_sql})"
        )
        return sql, (*grouped_params, *outer_params)


# --- Contact columns ------------------------------------------------------------------------


def _choice_column(column: str) -> Callable[[dict, CompileContext], Q]:
    def compile_choice(node: dict, context: CompileContext) -> Q:
        operator, value = node["operator"], node.get("value")
        if operator in ("in", "not_in"):
            matches = Q(**{f"{column}__in": value})
            return matches if operator == "in" else ~matches
        empty = Q(**{column: ""})
        return empty if operator == "is_empty" else ~empty

    return compile_choice


TEXT_LOOKUPS = {
    "equals": "iexact",
    "contains": "icontains",
    "starts_with": "istartswith",
    "ends_with": "iendswith",
}


def _lowered(values: list[str]) -> list[str]:
    return sorted({value.strip().lower() for value in values})


def _text_column(column: str) -> Callable[[dict, CompileContext], Q]:
    def compile_text(node: dict, context: CompileContext) -> Q:
        operator = node["operator"]
        if operator in ("is_empty", "is_set"):
            empty = Q(**{column: ""})
            return empty if operator == "is_empty" else ~empty
        if operator in ("in", "not_in"):
            listed = Q(In(Lower(F(column)), _lowered(node["value"])))
            return listed if operator == "in" else ~listed
        positive = operator.removeprefix("not_")
        matches = Q(**{f"{column}__{TEXT_LOOKUPS[positive]}": node["value"].strip()})
        return ~matches if operator.startswith("not_") else matches

    return compile_text


def _email_domain(node: dict, context: CompileContext) -> Q:
    """The part of the address after its last "@" (an address has exactly one)."""
    domain = Substr(F("email"), StrIndex(F("email"), Value("@")) + 1)
    operator = node["operator"]
    if operator in ("is_empty", "is_set"):
        empty = Q(IExact(domain, ""))
        return empty if operator == "is_empty" else ~empty
    if operator in ("in", "not_in"):
        listed = Q(In(Lower(domain), _lowered(node["value"])))
        return listed if operator == "in" else ~listed
    lookup = TEXT_LOOKUP_CLASSES[operator.removeprefix("not_")]
    matches = Q(lookup(domain, node["value"].strip()))
    return ~matches if operator.startswith("not_") else matches


def _company_column(name: str) -> Callable[[dict, CompileContext], Q]:
    """A company's column; a contact without a company has it empty."""
    column = f"company__{name}"
    as_text = _text_column(column)

    def compile_company(node: dict, context: CompileContext) -> Q:
        operator = node["operator"]
        if operator in ("is_empty", "is_set"):
            empty = Q(company__isnull=True) | Q(**{column: ""})
            return empty if operator == "is_empty" else ~empty
        matches = as_text({**node, "operator": operator.removeprefix("not_")}, context)
        # Without a company the LEFT JOIN gives NULL, and NOT NULL is NULL: negate (here,
        # or in a "none of" group) only a comparison that is never NULL.
        matches = _never_null(matches)
        return ~matches if operator.startswith("not_") else matches

    return compile_company


def _never_null(condition: Q) -> Q:
    """The condition as CASE WHEN … THEN true ELSE false: its NOT is never NULL."""
    return Q(
        Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())
    )


def _owner(node: dict, context: CompileContext) -> Q:
    operator = node["operator"]
    if operator in ("is_empty", "is_set"):
        return Q(owner__isnull=operator == "is_empty")
    owners = get_user_model().objects.filter(username__in=node["value"]).values("pk")
    matches = Q(owner__in=owners)
    return matches if operator == "in" else ~matches


def _tags(node: dict, context: CompileContext) -> Q:
    names = sorted({name.strip() for name in node["value"]})
    tagged = Contact.tags.through.objects.filter(contact_id=OuterRef("pk"))
    if node["operator"] == "has_all":
        return reduce(and_, (Q(Exists(tagged.filter(tag__name=name))) for name in names))
    has_any = Q(Exists(tagged.filter(tag__name__in=names)))
    return has_any if node["operator"] == "has_any" else ~has_any


def _number_column(column: str) -> Callable[[dict, CompileContext], Q]:
    def compile_number(node: dict, context: CompileContext) -> Q:
        operator, value = node["operator"], node["value"]
        if operator == "between":
            return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
        return Q(**{f"{column}__{operator}": value})

    return compile_number


def _date_column(column: str) -> Callable[[dict, CompileContext], Q]:
    def compile_date(node: dict, context: CompileContext) -> Q:
        operator, value = node["operator"], node.get("value")
        if operator in ("is_empty", "is_set"):
            return Q(**{f"{column}__isnull": operator == "is_empty"})
        if operator == "in_last_days":
            return Q(**{f"{column}__gte": context.days_ago(value)})
        if operator == "more_than_days_ago":
            return Q(**{f"{column}__lt": context.days_ago(value)})
        if operator == "before":
            return Q(**{f"{column}__lt": _start_of(value)})
        return Q(**{f"{column}__gte": _start_of(value)})

    return compile_date


# --- Custom properties (also an activity's `where`) -----------------------------------------

NUMBER_LOOKUPS = {
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}
TEXT_LOOKUP_CLASSES = {
    "equals": IExact,
    "contains": IContains,
    "starts_with": IStartsWith,
    "ends_with": IEndsWith,
}


def property_q(column: str, key: str, operator: str, value: Any, context: CompileContext) -> Q:
    """Compile one comparison of a JSON column's key (Contact or Activity properties)."""
    text = JsonText(column, key)
    if operator in ("is_set", "is_empty"):
        is_set = _definitely(GreaterThan(Length(text), 0))
        return is_set if operator == "is_set" else ~is_set
    if operator in ("in", "not_in"):
        listed = _definitely(In(Lower(text), _lowered(value)))
        return listed if operator == "in" else ~listed
    if operator.removeprefix("not_") in TEXT_LOOKUP_CLASSES:
        lookup = TEXT_LOOKUP_CLASSES[operator.removeprefix("not_")]
        matches = _definitely(lookup(text, value.strip()))
        return ~matches if operator.startswith("not_") else matches
    if operator in NUMBER_LOOKUPS:
        return _definitely(NUMBER_LOOKUPS[operator](_json_number(text), float(value)))
    return _definitely(Regex(text, DATE_PATTERN)) & _date_property(text, operator, value, context)


def _date_property(text: JsonText, operator: str, value: Any, context: CompileContext) -> Q:
    day = Substr(text, 1, 10)
    today = context.today
    if operator == "date_before":
        return _definitely(LessThan(day, value))
    if operator == "date_on_or_after":
        return _definitely(GreaterThanOrEqual(day, value))
    if operator == "date_in_last_days":
        since = (today - datetime.timedelta(days=value)).isoformat()
        return _between(day, since, today.isoformat())
    if operator == "date_in_next_days":
        until = (today + datetime.timedelta(days=value)).isoformat()
        return _between(day, today.isoformat(), until)
    return _anniversary(text, today, value)


def _between(expression, lowest: str, highest: str) -> Q:
    return _definitely(GreaterThanOrEqual(expression, lowest)) & _definitely(
        LessThanOrEqual(expression, highest)
    )


def _anniversary(text: JsonText, today: datetime.date, days: int) -> Q:
    """The date's month and day (any year) fall within the next `days` days."""
    if days >= 365:
        return Q()
    month_day = Substr(text, 6, 5)
    start = today.strftime("%m-%d")
    end = (today + datetime.timedelta(days=days)).strftime("%m-%d")
    after_start = _definitely(GreaterThanOrEqual(month_day, start))
    before_end = _definitely(LessThanOrEqual(month_day, end))
    # Crossing New Year: 12-20 … 01-10 is "after the start or before the end".
    return (after_start & before_end) if start <= end else (after_start | before_end)


def _property(node: dict, context: CompileContext) -> Q:
    return property_q("properties", node["key"], node["operator"], node.get("value"), context)


# --- Consent and suppression ----------------------------------------------------------------


def _consent(node: dict, context: CompileContext) -> Q:
    granted = Q(consent_granted_exists(context.topic_id(node["topic"])))
    return granted if node["operator"] == "granted" else ~granted


def _suppressed(node: dict, context: CompileContext) -> Q:
    suppressed = Q(contact_is_suppressed_expression())
    return suppressed if node["operator"] == "is" else ~suppressed


# --- Behaviour ------------------------------------------------------------------------------


def _activity(node: dict, context: CompileContext) -> Q:
    done = Activity.objects.filter(kind=node["kind"])
    if node.get("days"):
        done = done.filter(occurred_at__gte=context.days_ago(node["days"]))
    for where in node.get("where") or []:
        done = done.filter(
            property_q("properties", where["key"], where["operator"], where.get("value"), context)
        )
    count = node["count"] if node["operator"] == "at_least" else 1
    if count <= 1:
        if context.whole_table and context._any_depth:
            did = Q(pk__in=_contacts_who_did(done))
        else:
            did = Q(Exists(done.filter(contact=OuterRef("pk"))))
        return did if node["operator"] == "at_least" else ~did
    # "At least N": count every contact's matching activities in one pass over the
    # (kind, occurred_at, contact) index, not once per contact.
    grouped = (
        done.filter(contact__isnull=False)
        .order_by()
        .values("contact_id")
        # COUNT(*), not COUNT(id): the id is not in the index, and reading it would
        # fetch every activity row from the table.
        .annotate(done_count=Count("*"))
        .filter(done_count__gte=count)
    )
    return Q(ContactIn(grouped))


def _contacts_who_did(done: QuerySet) -> QuerySet:
    """The distinct contact ids of these activities, for `pk IN (…)` inside an OR.

    Under OR, PostgreSQL cannot turn EXISTS into a semi-join: it runs it per contact,
    and at 1M contacts the nested segment shape probed the activity index ~370,000
    times (3.2 s, docs/performance.md). `pk IN (SELECT DISTINCT …)` is read once into a
    hash ("hashed SubPlan"): 80,000 index entries, then a lookup per contact (1.5 s on
    the loaded machine, and the contact scan became a parallel seq scan). Only for
    whole-table queries: checking a few contacts, probing them is cheaper than reading
    the whole set. DISTINCT bounds the hash by the number of contacts, which at the
    work_mem the segment queries set (crm.segment_selectors.SEGMENT_WORK_MEM) fits
    1M contacts: a set that did not fit would be scanned per contact instead.
    Never NULL, so that NOT IN means "not among them".
    """
    return done.filter(contact__isnull=False).order_by().values("contact_id").distinct()


# --- Deals and purchases --------------------------------------------------------------------


def _open_deal(node: dict, context: CompileContext) -> Q:
    deals = Deal.objects.filter(contact=OuterRef("pk"), stage__outcome=DealStage.Outcome.OPEN)
    if node["operator"] == "in_stage":
        deals = deals.filter(stage__key__in=node["value"])
    return Q(Exists(deals))


def _won_deals_total(node: dict, context: CompileContext) -> Q:
    value = float(node["value"])
    # Amounts are never negative, so a contact without won deals totals 0.
    if node["operator"] == "gte":
        return EVERYONE if value <= 0 else Q(ContactIn(_won_totals(GreaterThanOrEqual, value)))
    return NOBODY if value < 0 else ~Q(ContactIn(_won_totals(GreaterThan, value)))


def _won_totals(lookup, value: float) -> QuerySet:
    """Contacts whose won deals add up to `lookup` the value, summed once for everyone."""
    # As a float: SQLite compares its decimals as text otherwise.
    total = Cast(Sum("amount"), FloatField())
    return (
        Deal.objects.filter(stage__outcome=DealStage.Outcome.WON, contact__isnull=False)
        .order_by()
        .values("contact_id")
        .annotate(won_total=total)
        .filter(lookup(F("won_total"), value))
    )


def _purchased(since: datetime.datetime | None) -> Q:
    orders = Activity.objects.filter(contact=OuterRef("pk"), kind=ORDER_KIND)
    wins = Deal.objects.filter(
        contact=OuterRef("pk"), stage__outcome=DealStage.Outcome.WON, closed_at__isnull=False
    )
    if since is not None:
        orders = orders.filter(occurred_at__gte=since)
        wins = wins.filter(closed_at__gte=since)
    return Q(Exists(orders)) | Q(Exists(wins))


def _days_since_purchase(node: dict, context: CompileContext) -> Q:
    recently = _purchased(context.days_ago(node["value"]))
    if node["operator"] == "in_last_days":
        return recently
    return _purchased(None) & ~recently


# --- Purchase predictions (crm.predictions) -------------------------------------------------


def _predicted(**lookups) -> Q:
    return Q(Exists(ContactPrediction.objects.filter(contact=OuterRef("pk"), **lookups)))


def _churn_risk(node: dict, context: CompileContext) -> Q:
    # Stored as a probability, offered as a percentage.
    return _predicted(**{f"churn_risk__{node['operator']}": float(node["value"]) / 100})


def _predicted_value(node: dict, context: CompileContext) -> Q:
    # value_percentile is the share of valued customers predicted to spend less.
    return _predicted(value_percentile__gte=100 - float(node["value"]))


# --- Other segments -------------------------------------------------------------------------


def _segment(node: dict, context: CompileContext) -> Q:
    key = node["value"]
    inside = _in_segment(key, context.definition_of(key), context)
    return inside if node["operator"] == "in" else ~inside


CONDITIONS: dict[str, Callable[[dict, CompileContext], Q]] = {
    "lifecycle_stage": _choice_column("lifecycle_stage_id"),
    "country": _choice_column("country"),
    "owner": _owner,
    "source": _choice_column("source"),
    **{
        name: _text_column(name)
        for name in (
            "entry_point",
            "email",
            "first_name",
            "last_name",
            "time_zone",
            "job_title",
            "language",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        )
    },
    "email_domain": _email_domain,
    **{
        f"company_{name}": _company_column(name)
        for name in ("name", "domain", "industry", "size", "country")
    },
    "tags": _tags,
    "lead_score": _number_column("lead_score"),
    **{
        name: _date_column(name)
        for name in ("created_at", "updated_at", "last_engaged_at", "lifecycle_stage_changed_at")
    },
    "property": _property,
    "consent": _consent,
    "suppressed": _suppressed,
    "activity": _activity,
    "open_deal": _open_deal,
    "won_deals_total": _won_deals_total,
    "days_since_purchase": _days_since_purchase,
    "churn_risk": _churn_risk,
    "predicted_value": _predicted_value,
    "segment": _segment,
}


def _activity_kind(node: dict, context: CompileContext) -> Q:
    listed = Q(kind__in=node["value"])
    return listed if node["operator"] == "in" else ~listed


def _activity_property(node: dict, context: CompileContext) -> Q:
    return property_q("properties", node["key"], node["operator"], node.get("value"), context)


#: The activity being matched (crm.segments.catalog.ACTIVITY_FIELDS), over Activity rows.
ACTIVITY_CONDITIONS: dict[str, Callable[[dict, CompileContext], Q]] = {
    "kind": _activity_kind,
    "property": _activity_property,
}
