"""scoring's sections of the configuration file: scoring, handoff and demo routing rules,
territories.

Imported by ScoringConfig.ready(). docs/scoring.md documents every field. References
to other objects are written by key (scoring rules, lifecycle stages) or username
(users); a key may point at an object the same file creates.
"""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from crm.conditions.legacy import LegacyConditionError, scoring_rows_to_tree, warn_deprecated
from crm.config_io import (
    ConfigError,
    ConfigSection,
    Document,
    Item,
    Outcome,
    PlannedItem,
    SectionSummary,
    model_items_plan,
    model_items_save,
    model_items_summary,
    register_section,
)
from crm.models import LifecycleStage, Segment
from scoring.conditions import condition_problems
from scoring.models import DemoRoutingRule, HandoffRule, ScoringRule, Territory

RULES = "scoring_rules"
TERRITORIES = "territories"
HANDOFF_RULES = "handoff_rules"
DEMO_ROUTING_RULES = "demo_routing_rules"
#: crm's segments section: a demo routing rule may name a segment the same file creates.
SEGMENTS = "segments"
RULE_FIELDS = (
    "key",
    "name",
    "description",
    "category",
    "is_active",
    "activity_kind",
    "points",
    "cap_points",
    "cap_period_days",
    "halve_after_days",
    "expire_after_days",
    "min_silence_days",
)
#: The old form of a condition (a list of these was a rule's conditions); still imported.
OLD_CONDITION_FIELDS = ("field", "operator", "value")
TERRITORY_FIELDS = ("key", "name", "countries", "is_active", "position")
HANDOFF_RULE_FIELDS = (
    "key",
    "name",
    "description",
    "is_active",
    "position",
    "score_threshold",
    "signal_window_days",
    "rearm_margin",
    "cooldown_days",
    "sla_minutes",
    "on_sla_breach",
)

DEMO_ROUTING_RULE_FIELDS = ("key", "name", "is_active", "position")


@dataclass
class Planned:
    """A row to save plus the related things the file sets on it (None: leave as stored)."""

    row: PlannedItem
    related: dict[str, Any] = field(default_factory=dict)


def _mark_changed(row: PlannedItem, name: str) -> None:
    if row.outcome == Outcome.CREATED:
        return  # a new row is saved whole
    if row.outcome == Outcome.UNCHANGED:
        row.outcome = Outcome.UPDATED
    if name not in row.changed_fields:
        row.changed_fields.append(name)


def _save(planned: list[Planned], model, apply_related) -> SectionSummary:
    """Save rows on their own columns, then what the file relates to them."""
    for plan in planned:
        columns = [name for name in plan.row.changed_fields if name not in plan.related]
        if plan.row.outcome == Outcome.CREATED or columns:
            plan.row.changed_fields = columns
            model_items_save([plan.row])
    for plan in planned:
        apply_related(plan)
    return model_items_summary(model, [plan.row for plan in planned])


def _keys_in(document: Document, section: str) -> set[str]:
    return {item["key"] for item in document.get(section, []) if isinstance(item, dict)}


def _text_list(raw: Any, section: str, key: str, name: str) -> tuple[list[str], list[ConfigError]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list) or not all(isinstance(value, str) for value in raw):
        return [], [ConfigError(section, key, name, "must be a list of text values")]
    return raw, []


def _users_by_name(names: set[str]) -> dict[str, Any]:
    user_model = get_user_model()
    lookup = {f"{user_model.USERNAME_FIELD}__in": names}
    return {user.get_username(): user for user in user_model.objects.filter(**lookup)}


# --- Scoring rules ---------------------------------------------------------------------------


def scoring_rules_export() -> list[Item]:
    """Every scoring rule by key, with its conditions as one tree in the new words."""
    return [
        {name: getattr(rule, name) for name in (*RULE_FIELDS, "conditions")}
        for rule in ScoringRule.objects.order_by("key")
    ]


def scoring_rules_plan(items: list[Item]) -> tuple[list[PlannedItem], list[ConfigError]]:
    translated, errors = [], []
    for item in items:
        conditions, problems = _conditions_in_new_words(item)
        translated.append({**item, "conditions": conditions})
        errors += problems
    rows, more = model_items_plan(
        section=RULES,
        model=ScoringRule,
        items=translated,
        fields=(*RULE_FIELDS, "conditions"),
    )
    errors += more
    for row in rows:
        if any(error.key == row.key and error.field.startswith("conditions") for error in errors):
            continue
        errors += [
            ConfigError(RULES, row.key, "conditions", problem)
            for problem in condition_problems(row.instance.conditions, row.instance.category)
        ]
    return rows, errors


def _conditions_in_new_words(item: Item) -> tuple[Any, list[ConfigError]]:
    """The item's conditions as a tree; the old list of rows still imports, with a warning."""
    raw, key = item.get("conditions"), str(item.get("key", ""))
    if raw is None or isinstance(raw, dict):
        return raw, []
    if not isinstance(raw, list):
        return raw, [ConfigError(RULES, key, "conditions", "must be a condition group")]
    category = item.get("category") or ScoringRule.Category.ENGAGEMENT
    rows, errors = [], []
    for position, row in enumerate(raw, start=1):
        where = f"conditions[#{position}]"
        if not isinstance(row, dict) or set(row) - set(OLD_CONDITION_FIELDS):
            message = "must be a mapping of field, operator, value (the old form)"
            errors.append(ConfigError(RULES, key, where, message))
            continue
        values = [row.get(name) or "" for name in OLD_CONDITION_FIELDS]
        if not all(isinstance(value, str) for value in values):
            message = "field, operator and value must be text (quote numbers: '50')"
            errors.append(ConfigError(RULES, key, where, message))
            continue
        rows.append(tuple(values))
    if errors:
        return raw, errors
    try:
        tree, notes = scoring_rows_to_tree(rows, category=category)
    except LegacyConditionError as error:
        return raw, [ConfigError(RULES, key, "conditions", str(error))]
    warn_deprecated(f"scoring_rules[{key}].conditions", notes)
    return tree, []


def scoring_rules_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return scoring_rules_plan(items)[1]


def scoring_rules_apply(items: list[Item]) -> SectionSummary:
    """Create or update rules by key, conditions included."""
    rows, _errors = scoring_rules_plan(items)
    model_items_save(rows)
    return model_items_summary(ScoringRule, rows)


# --- Territories -----------------------------------------------------------------------------


def territories_export() -> list[Item]:
    """Every territory by key, with its salespeople's usernames."""
    territories = Territory.objects.prefetch_related("users").order_by("key")
    return [
        {
            **{name: getattr(territory, name) for name in TERRITORY_FIELDS},
            "users": sorted(user.get_username() for user in territory.users.all()),
        }
        for territory in territories
    ]


def territories_plan(items: list[Item]) -> tuple[list[Planned], list[ConfigError]]:
    rows, errors = model_items_plan(
        section=TERRITORIES, model=Territory, items=items, fields=TERRITORY_FIELDS
    )
    named = [
        _text_list(item.get("users"), TERRITORIES, row.key, "users")
        for item, row in zip(items, rows, strict=True)
    ]
    users = _users_by_name({name for names, _ in named for name in names})
    stored = _stored_territory_users([row.instance for row in rows])
    planned = []
    for row, (names, problems) in zip(rows, named, strict=True):
        errors += problems
        missing = sorted(set(names) - users.keys())
        if missing:
            errors.append(
                ConfigError(TERRITORIES, row.key, "users", f"no such user: {', '.join(missing)}")
            )
        plan = Planned(row)
        if not problems and not missing and sorted(set(names)) != stored.get(row.key, []):
            plan.related["users"] = [users[name] for name in sorted(set(names))]
            _mark_changed(row, "users")
        planned.append(plan)
    return planned, errors


def _stored_territory_users(territories: list[Territory]) -> dict[str, list[str]]:
    saved = [territory for territory in territories if territory.pk is not None]
    return {
        territory.key: sorted(user.get_username() for user in territory.users.all())
        for territory in saved
    }


def territories_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return territories_plan(items)[1]


def territories_apply(items: list[Item]) -> SectionSummary:
    planned, _errors = territories_plan(items)

    def apply_users(plan: Planned) -> None:
        if "users" in plan.related:
            plan.row.instance.users.set(plan.related["users"])

    return _save(planned, Territory, apply_users)


# --- Handoff rules ---------------------------------------------------------------------------


def handoff_rules_export() -> list[Item]:
    """Every handoff rule by key, with signal rules by key and the manager by username."""
    rules = (
        HandoffRule.objects.select_related("sla_manager")
        .prefetch_related("signal_rules")
        .order_by("key")
    )
    return [
        {
            **{name: getattr(rule, name) for name in HANDOFF_RULE_FIELDS},
            "signal_rules": sorted(signal.key for signal in rule.signal_rules.all()),
            "lifecycle_stage": rule.lifecycle_stage_id,
            "recycle_stage": rule.recycle_stage_id,
            "sla_manager": rule.sla_manager.get_username() if rule.sla_manager else None,
        }
        for rule in rules
    ]


def handoff_rules_plan(
    items: list[Item], document: Document
) -> tuple[list[Planned], list[ConfigError]]:
    rows, errors = model_items_plan(
        section=HANDOFF_RULES, model=HandoffRule, items=items, fields=HANDOFF_RULE_FIELDS
    )
    references = _HandoffReferences.load(items, document)
    planned = []
    for item, row in zip(items, rows, strict=True):
        plan = Planned(row)
        errors += references.plan(item, plan)
        planned.append(plan)
    return planned, errors


@dataclass
class _HandoffReferences:
    """What a handoff rule may point at: in the database or created by the same file."""

    stages: set[str]
    signal_categories: dict[str, str]
    users: dict[str, Any]

    @classmethod
    def load(cls, items: list[Item], document: Document) -> "_HandoffReferences":
        stages = set(LifecycleStage.objects.values_list("key", flat=True))
        stages |= _keys_in(document, "lifecycle_stages")
        categories = dict(ScoringRule.objects.values_list("key", "category"))
        for rule in document.get(RULES, []):
            categories[rule["key"]] = rule.get("category") or ScoringRule.Category.ENGAGEMENT
        managers = {item.get("sla_manager") for item in items}
        users = _users_by_name({name for name in managers if isinstance(name, str)})
        return cls(stages=stages, signal_categories=categories, users=users)

    def plan(self, item: Item, plan: Planned) -> list[ConfigError]:
        """Check references and set changed ones on the unsaved rule (signals: after save)."""
        errors = self._signals(item, plan)
        for name, default in (("lifecycle_stage", None), ("recycle_stage", "engaged_lead")):
            errors += self._stage(item, plan, name, default)
        return errors + self._manager(item, plan)

    def _stage(
        self, item: Item, plan: Planned, name: str, default: str | None
    ) -> list[ConfigError]:
        stage = item.get(name)
        stage = default if stage is None else stage
        if stage is not None and (not isinstance(stage, str) or stage not in self.stages):
            return [ConfigError(HANDOFF_RULES, plan.row.key, name, f"no lifecycle stage {stage!r}")]
        if getattr(plan.row.instance, f"{name}_id") != stage:
            setattr(plan.row.instance, f"{name}_id", stage)
            _mark_changed(plan.row, name)
        return []

    def _manager(self, item: Item, plan: Planned) -> list[ConfigError]:
        name = item.get("sla_manager")
        if name is not None and name not in self.users:
            return [
                ConfigError(HANDOFF_RULES, plan.row.key, "sla_manager", f"no such user: {name}")
            ]
        manager = self.users[name] if name is not None else None
        if (manager.pk if manager else None) != plan.row.instance.sla_manager_id:
            plan.row.instance.sla_manager = manager
            _mark_changed(plan.row, "sla_manager")
        return []

    def _signals(self, item: Item, plan: Planned) -> list[ConfigError]:
        key = plan.row.key
        keys, errors = _text_list(item.get("signal_rules"), HANDOFF_RULES, key, "signal_rules")
        for signal in keys:
            category = self.signal_categories.get(signal)
            if category is None:
                errors.append(
                    ConfigError(HANDOFF_RULES, key, "signal_rules", f"no scoring rule {signal!r}")
                )
            elif category != ScoringRule.Category.ENGAGEMENT:
                message = f"{signal!r} is a fit rule; signals must be engagement rules"
                errors.append(ConfigError(HANDOFF_RULES, key, "signal_rules", message))
        rule = plan.row.instance
        stored = [] if rule.pk is None else sorted(rule.signal_rules.values_list("key", flat=True))
        if not errors and sorted(set(keys)) != stored:
            plan.related["signal_rules"] = sorted(set(keys))
            _mark_changed(plan.row, "signal_rules")
        return errors


def handoff_rules_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return handoff_rules_plan(items, document)[1]


def handoff_rules_apply(items: list[Item]) -> SectionSummary:
    """Save rules and their references; scoring rules and stages were applied before."""
    # Everything was validated against the whole file, and earlier sections are saved now.
    planned, _errors = handoff_rules_plan(items, {})

    def apply_signals(plan: Planned) -> None:
        if "signal_rules" in plan.related:
            signals = ScoringRule.objects.filter(key__in=plan.related["signal_rules"])
            plan.row.instance.signal_rules.set(signals)

    return _save(planned, HandoffRule, apply_signals)


# --- Demo routing rules ----------------------------------------------------------------------


def demo_routing_rules_export() -> list[Item]:
    """Every demo routing rule by key, with its segment by key and people by username."""
    rules = (
        DemoRoutingRule.objects.select_related("segment", "assignee")
        .prefetch_related("users")
        .order_by("key")
    )
    return [
        {
            **{name: getattr(rule, name) for name in DEMO_ROUTING_RULE_FIELDS},
            "segment": rule.segment.key,
            "assignee": rule.assignee.get_username() if rule.assignee else None,
            "users": sorted(user.get_username() for user in rule.users.all()),
        }
        for rule in rules
    ]


def demo_routing_rules_plan(
    items: list[Item], document: Document
) -> tuple[list[Planned], list[ConfigError]]:
    rows, errors = model_items_plan(
        section=DEMO_ROUTING_RULES,
        model=DemoRoutingRule,
        items=items,
        fields=DEMO_ROUTING_RULE_FIELDS,
    )
    segments = dict(Segment.objects.values_list("key", "pk"))
    # Segments the same file creates are saved before this section (order 200 < 210).
    segments.update(dict.fromkeys(_keys_in(document, SEGMENTS) - segments.keys()))
    names = set()
    for item in items:
        names |= {item["assignee"]} if isinstance(item.get("assignee"), str) else set()
        names |= {name for name in item.get("users") or [] if isinstance(name, str)}
    users = _users_by_name(names)
    planned = []
    for item, row in zip(items, rows, strict=True):
        plan = Planned(row)
        errors += _demo_segment(item, plan, segments)
        errors += _demo_people(item, plan, users)
        planned.append(plan)
    return planned, errors


def _demo_segment(item: Item, plan: Planned, segments: dict[str, int | None]) -> list[ConfigError]:
    key = item.get("segment")
    if not isinstance(key, str) or key not in segments:
        message = "is required" if key is None else f"no segment {key!r}"
        return [ConfigError(DEMO_ROUTING_RULES, plan.row.key, "segment", message)]
    rule = plan.row.instance
    if rule.segment_id is None or rule.segment.key != key:
        plan.related["segment"] = key
        _mark_changed(plan.row, "segment")
    return []


def _demo_people(item: Item, plan: Planned, users: dict[str, Any]) -> list[ConfigError]:
    key = plan.row.key
    errors = []
    assignee = item.get("assignee")
    if assignee is not None and assignee not in users:
        errors.append(ConfigError(DEMO_ROUTING_RULES, key, "assignee", f"no such user: {assignee}"))
    names, problems = _text_list(item.get("users"), DEMO_ROUTING_RULES, key, "users")
    errors += problems
    missing = sorted(set(names) - users.keys())
    if missing:
        message = f"no such user: {', '.join(missing)}"
        errors.append(ConfigError(DEMO_ROUTING_RULES, key, "users", message))
    if errors:
        return errors
    rule = plan.row.instance
    chosen = users[assignee] if assignee is not None else None
    if (chosen.pk if chosen else None) != rule.assignee_id:
        rule.assignee = chosen
        _mark_changed(plan.row, "assignee")
    stored = [] if rule.pk is None else sorted(user.get_username() for user in rule.users.all())
    if sorted(set(names)) != stored:
        plan.related["users"] = [users[name] for name in sorted(set(names))]
        _mark_changed(plan.row, "users")
    return []


def demo_routing_rules_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return demo_routing_rules_plan(items, document)[1]


def demo_routing_rules_apply(items: list[Item]) -> SectionSummary:
    """Save rules with their segment (saved by crm's section before) and their people."""
    planned, _errors = demo_routing_rules_plan(items, {})
    for plan in planned:
        if "segment" in plan.related:
            # The segment is a required column, so it is set before the row is saved.
            plan.row.instance.segment = Segment.objects.get(key=plan.related.pop("segment"))

    def apply_users(plan: Planned) -> None:
        if "users" in plan.related:
            plan.row.instance.users.set(plan.related["users"])

    return _save(planned, DemoRoutingRule, apply_users)


register_section(
    ConfigSection(
        name=RULES,
        order=110,
        fields=(*RULE_FIELDS, "conditions"),
        export=scoring_rules_export,
        validate=scoring_rules_validate,
        apply=scoring_rules_apply,
        model=ScoringRule,
    )
)
register_section(
    ConfigSection(
        name=TERRITORIES,
        order=120,
        fields=(*TERRITORY_FIELDS, "users"),
        export=territories_export,
        validate=territories_validate,
        apply=territories_apply,
        model=Territory,
    )
)
register_section(
    ConfigSection(
        name=HANDOFF_RULES,
        order=130,
        fields=(
            *HANDOFF_RULE_FIELDS,
            "signal_rules",
            "lifecycle_stage",
            "recycle_stage",
            "sla_manager",
        ),
        export=handoff_rules_export,
        validate=handoff_rules_validate,
        apply=handoff_rules_apply,
        model=HandoffRule,
    )
)
register_section(
    ConfigSection(
        name=DEMO_ROUTING_RULES,
        order=210,
        fields=(*DEMO_ROUTING_RULE_FIELDS, "segment", "assignee", "users"),
        export=demo_routing_rules_export,
        validate=demo_routing_rules_validate,
        apply=demo_routing_rules_apply,
        model=DemoRoutingRule,
    )
)
