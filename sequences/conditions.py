"""Sequences' conditions, in the one condition language (crm.conditions).

Stored shapes (docs/sequences.md has examples):

- a trigger's conditions: an activity-mode tree over the triggering activity's
  properties, e.g. {"match": "all", "conditions": [{"field": "property", "key":
  "value", "operator": "gte", "value": 20}]}; empty: every activity of the kind;
- goals and exits: one activity-mode tree, usually "any of" groups of
  {"field": "kind", "operator": "in", "value": ["order_placed"]} and properties;
  empty: none;
- the audience, an email block's `when`, a branch's `condition`: a contact-mode tree;
  empty: everyone;
- a wait_for_event step's `event` (and a branch's `event`: "did it since enrolling"):
  an activity-mode tree.

The old shapes ({"field", "op": "eq"…}, {"activity": kind, "where"}, {"contact": …})
are still read, through crm.conditions.legacy, because published sequence versions
and waiting enrollments keep what they were created with. This module only adapts;
crm.conditions.evaluator evaluates.
"""

from collections.abc import Mapping
from typing import Any

from crm.conditions import evaluator, legacy
from crm.models import Activity
from crm.segments.catalog import ACTIVITY_MODE, CONTACT_MODE
from crm.segments.compiler import CompileContext, compile_activity_definition
from crm.segments.validation import References, definition_problems

MISSING = object()
#: Fewest sends per A/B variant before a winner may be picked (sequences.services.variants).
LOWEST_MIN_SAMPLE = 20
#: Keys an enrollment's waiting_for holds besides the awaited event's tree.
WAITING_KEYS = ("yes_step",)


# --- Evaluation -----------------------------------------------------------------------------


def activity_tree(condition: Any) -> dict:
    """Any stored activity condition (tree, old list or old {"activity", "where"}) as a tree."""
    if isinstance(condition, Mapping) and "event" in condition:
        condition = condition["event"]  # an enrollment's waiting_for: {"event", "yes_step"}
    if isinstance(condition, list):
        return legacy.sequence_activities_to_tree(condition)[0]
    if isinstance(condition, Mapping) and "activity" in condition:
        bare = {k: v for k, v in condition.items() if k not in WAITING_KEYS}
        return legacy.sequence_activity_to_tree(bare)[0]
    return condition or {}


def contact_tree(condition: Any) -> dict:
    """Any stored contact condition (tree, old list or one old condition) as a tree."""
    if isinstance(condition, list):
        return legacy.sequence_contacts_to_tree(condition)[0]
    if isinstance(condition, Mapping) and "contact" in condition:
        return legacy.group([legacy.sequence_contact_to_condition(condition)[0]])
    return condition or {}


def activity_matches(condition: Any, kind: str, properties: Mapping | None) -> bool:
    """Does the activity meet a goal, exit or awaited event? An empty condition: never."""
    tree = activity_tree(condition)
    if evaluator.definition_is_empty(tree):
        return False
    return evaluator.activity_matches(tree, kind=kind, properties=properties)


def properties_match(conditions: Any, kind: str, properties: Mapping | None) -> bool:
    """Does a trigger's activity meet its conditions? No conditions: every activity does."""
    if isinstance(conditions, list):
        conditions = legacy.sequence_where_to_tree(conditions)[0]
    return evaluator.activity_matches(conditions, kind=kind, properties=properties)


def contact_matches(condition: Any, facts: Mapping) -> bool:
    """Does the contact (contact_facts) meet an audience, block or branch? Empty: yes."""
    return evaluator.contact_matches(contact_tree(condition), facts)


def did_since(contact, condition: Any, since) -> bool:
    """Has the contact done an activity meeting the activity condition since `since`?"""
    tree = activity_tree(condition)
    if evaluator.definition_is_empty(tree):
        return False
    query = compile_activity_definition(tree, context=CompileContext())
    done = Activity.objects.filter(contact=contact, occurred_at__gte=since)
    return done.filter(query).exists()


def event_label(condition: Any) -> str:
    """A short name for an awaited event: its activity kinds, or "an activity"."""
    kinds = [
        kind
        for node in _leaves(activity_tree(condition))
        if node.get("field") == "kind" and node.get("operator") == "in"
        for kind in node.get("value") or []
    ]
    return " or ".join(kinds) if kinds else "an activity"


def _leaves(node: Any):
    if isinstance(node, Mapping) and "match" in node:
        for child in node.get("conditions") or []:
            yield from _leaves(child)
    elif isinstance(node, Mapping):
        yield node


def contact_facts(contact) -> dict:
    """The contact as plain data for conditions and templates; load company and tags first.

    The keys are the condition language's field names (crm.conditions.evaluator reads
    them), nested as templates use them: company.name, properties.plan.
    """
    company = contact.company
    return {
        "pk": contact.pk,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "job_title": contact.job_title,
        "country": contact.country,
        "language": contact.language,
        "time_zone": contact.time_zone,
        "lifecycle_stage": contact.lifecycle_stage_id,
        "source": contact.source,
        "entry_point": contact.entry_point,
        "lead_score": contact.lead_score,
        "properties": dict(contact.properties or {}),
        "tags": [tag.name for tag in contact.tags.all()],
        "company": {
            "name": company.name,
            "domain": company.domain,
            "industry": company.industry,
            "size": company.size,
            "country": company.country,
        }
        if company
        else {},
    }


# --- Validation: every problem as text a marketer can act on --------------------------------


def activity_condition_errors(conditions: Any, where: str) -> list[str]:
    """Problems with goals, exits or an awaited event (an activity-mode tree)."""
    return _tree_errors(conditions, where, ACTIVITY_MODE, activity_tree)


def property_condition_errors(conditions: Any, where: str = "conditions") -> list[str]:
    """Problems with a trigger's conditions (an activity-mode tree)."""

    def as_tree(value: Any) -> Any:
        return legacy.sequence_where_to_tree(value)[0] if isinstance(value, list) else value

    return _tree_errors(conditions, where, ACTIVITY_MODE, as_tree)


def contact_condition_errors(conditions: Any, where: str) -> list[str]:
    """Problems with an audience, a block's `when` or a branch (a contact-mode tree)."""
    return _tree_errors(conditions, where, CONTACT_MODE, contact_tree)


def _tree_errors(conditions: Any, where: str, mode: str, as_tree) -> list[str]:
    try:
        tree = as_tree(conditions)
    except legacy.LegacyConditionError as error:
        return [f"{where}: {error}"]
    if evaluator.definition_is_empty(tree):
        return []
    references = References.load() if mode == CONTACT_MODE else References.none()
    problems = definition_problems(tree, references=references, mode=mode)
    return [f"{where}: {problem}" for problem in problems]


# --- Config files: the old words still import ----------------------------------------------


def conditions_in_new_words(value: Any, *, kind: str, where: str) -> Any:
    """A config file's conditions as a tree; old shapes translate, with a warning.

    `kind` is "activities" (goals, exits), "properties" (a trigger's) or "contacts"
    (audience, blocks). A shape that cannot translate is returned as it was, for
    validation to explain.
    """
    translate = {
        "activities": legacy.sequence_activities_to_tree,
        "properties": legacy.sequence_where_to_tree,
        "contacts": legacy.sequence_contacts_to_tree,
    }[kind]
    if not isinstance(value, list):
        return value
    if not value:
        return {}  # no conditions, in either language
    try:
        tree, notes = translate(value)
    except legacy.LegacyConditionError:
        return value
    legacy.warn_deprecated(where, notes or ["a list of conditions is now a group"])
    return tree


STEP_TARGET_KEYS = {
    "wait_for_event": ("yes_step", "timeout_step"),
    "branch_if": ("yes_step", "no_step"),
}


def step_config_errors(step_type: str, config: Any) -> list[str]:
    """What is wrong with a step's config for its type (branch targets are checked on review)."""
    if not isinstance(config, dict):
        return ["config must be an object"]
    check = _STEP_CHECKS.get(step_type)
    return check(config) if check else []


def _duration_errors(duration: Any, where: str) -> list[str]:
    if not isinstance(duration, dict) or not duration:
        return [f"{where} needs days, hours, minutes and/or business_days"]
    errors = [f"{where}: unknown unit {unit!r}" for unit in duration if unit not in _UNITS]
    bad = [unit for unit in _UNITS if unit in duration and not _is_count(duration[unit])]
    return errors + [f"{where}.{unit} must be a whole number ≥ 0" for unit in bad]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_UNITS = ("days", "hours", "minutes", "business_days")


def _time_errors(value: Any, where: str) -> list[str]:
    parts = value.split(":") if isinstance(value, str) else []
    valid = len(parts) == 2 and all(part.isdigit() for part in parts)
    if valid and int(parts[0]) < 24 and int(parts[1]) < 60:
        return []
    return [f"{where} must be a time such as 09:00"]


def _check_wait_until_time(config: dict) -> list[str]:
    errors = _time_errors(config.get("time"), "time")
    weekdays = config.get("weekdays", [])
    if not isinstance(weekdays, list) or not all(day in range(7) for day in weekdays):
        errors.append("weekdays must list numbers 0 (Monday) to 6 (Sunday)")
    return errors


def _check_wait_until_date(config: dict) -> list[str]:
    errors = [] if isinstance(config.get("property"), str) else ["property is required"]
    if not isinstance(config.get("offset_days", 0), int):
        errors.append("offset_days must be a whole number (negative: before the date)")
    return errors + _time_errors(config.get("time", "09:00"), "time")


def _check_wait_for_event(config: dict) -> list[str]:
    errors = _required_activity(config.get("event"), "event")
    return errors + _duration_errors(config.get("timeout"), "timeout")


def _check_branch_if(config: dict) -> list[str]:
    """A branch tests the contact (`condition`) or what they did since enrolling (`event`)."""
    if "event" in config:
        return _required_activity(config["event"], "event")
    condition = config.get("condition")
    if isinstance(condition, dict) and "activity" in condition:
        return _required_activity(condition, "condition")  # the old shape of `event`
    if condition is None:
        return ["condition is required: the contact condition, or use event"]
    return contact_condition_errors(condition, "condition")


def _required_activity(condition: Any, where: str) -> list[str]:
    try:
        empty = evaluator.definition_is_empty(activity_tree(condition))
    except legacy.LegacyConditionError as error:
        return [f"{where}: {error}"]
    if empty:
        return [f"{where} is required: the activity to wait for, e.g. its kind"]
    return activity_condition_errors(condition, where)


def _check_create_task(config: dict) -> list[str]:
    errors = [] if isinstance(config.get("title"), str) else ["title is required"]
    if config.get("assignee", "contact_owner") not in ("contact_owner", "sequence_owner"):
        errors.append("assignee must be contact_owner or sequence_owner")
    return errors


def _check_update_contact(config: dict) -> list[str]:
    allowed = {"lifecycle_stage", "add_tags", "properties"}
    errors = [f"unknown change {name!r}" for name in config if name not in allowed]
    return errors or (
        [] if config else ["say what to change: lifecycle_stage, add_tags, properties"]
    )


def _check_send_email(config: dict) -> list[str]:
    errors = []
    if config.get("on_frequency_cap", "defer") not in ("defer", "skip"):
        errors.append("on_frequency_cap must be defer or skip")
    if "variants" in config:
        errors += _variant_errors(config["variants"])
    if config.get("winner_by", "click") not in ("click", "goal"):
        errors.append("winner_by must be click or goal")
    min_sample = config.get("min_sample", LOWEST_MIN_SAMPLE)
    if not _is_count(min_sample) or min_sample < LOWEST_MIN_SAMPLE:
        errors.append(f"min_sample must be a whole number of sends, at least {LOWEST_MIN_SAMPLE}")
    return errors


def _variant_errors(variants: Any) -> list[str]:
    shape = {"key", "template", "split"}
    if not isinstance(variants, list) or len(variants) < 2:
        return ["variants must list at least two {key, template, split}"]
    if not all(isinstance(v, dict) and set(v) == shape for v in variants):
        return ["each variant needs exactly key, template and split"]
    errors = []
    keys = [v["key"] for v in variants]
    if len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
        errors.append("variant keys must be distinct names")
    splits = [v["split"] for v in variants]
    if not all(_is_count(split) for split in splits) or sum(splits) != 100:
        errors.append("variant splits must be whole percentages adding up to 100")
    return errors


_STEP_CHECKS = {
    "send_email": _check_send_email,
    "wait_duration": lambda config: _duration_errors(config.get("duration"), "duration"),
    "wait_until_time": _check_wait_until_time,
    "wait_until_date": _check_wait_until_date,
    "wait_until_best_time": lambda config: (
        []
        if _is_count(config.get("within_hours")) and 1 <= config["within_hours"] <= 72
        else ["within_hours must be a whole number of hours from 1 to 72"]
    ),
    "wait_for_event": _check_wait_for_event,
    "branch_if": _check_branch_if,
    "create_task": _check_create_task,
    "update_contact": _check_update_contact,
}
