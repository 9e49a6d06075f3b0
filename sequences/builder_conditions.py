"""The one place that converts between the segment builder widget and sequence conditions.

The sequence builder edits goals, exits, the audience, awaited events, branch conditions
and activity triggers with crm's segment builder widget (crm/static/crm/segment_builder.js),
whose output is a segment definition ({"match", "conditions"}). Sequences still store
their own condition shapes (sequences/conditions.py). `widget_to_conditions` and
`conditions_to_widget` are the only code that knows both, so when crm's unified condition
language lands, switching means rewriting this module (and nothing else in the builder).

Shapes (what a form stores):

- ``activities``: goals and exits, any of [{"activity", "where"}] (widget root "any");
- ``event``: one activity condition {"activity", "where"} (awaited events, activity triggers);
- ``contacts``: the audience, all of [{"contact", "op", "value"}] (widget root "all");
- ``branch``: one contact condition or one activity condition ("did it since entry").
"""

from typing import Any

ACTIVITIES, EVENT, CONTACTS, BRANCH = "activities", "event", "contacts", "branch"

#: Widget fields sequences can evaluate, by shape (the builder offers only these).
CONTACT_FIELDS = (
    "lifecycle_stage",
    "country",
    "source",
    "entry_point",
    "email",
    "job_title",
    "language",
    "tags",
    "lead_score",
    "property",
)
SHAPE_FIELDS = {
    ACTIVITIES: ("activity",),
    EVENT: ("activity",),
    CONTACTS: CONTACT_FIELDS,
    BRANCH: (*CONTACT_FIELDS, "activity"),
}
#: Widget operator ↔ sequence operator, for text, numbers and activity properties.
_OPS = {
    "equals": "eq",
    "not_equals": "ne",
    "contains": "contains",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "not_in": "not_in",
}
_REVERSE_OPS = {op: widget for widget, op in _OPS.items()}
_LIST_FIELDS = ("lifecycle_stage", "country", "source")
_TEXT_FIELDS = ("entry_point", "email", "job_title", "language")


class WidgetConditionError(ValueError):
    """The widget's definition cannot be stored as sequence conditions; `messages` say why."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class NotRepresentable(ValueError):
    """Stored conditions the widget cannot show (edit them in the advanced view)."""


# --- Widget → stored --------------------------------------------------------------------------


def widget_to_conditions(definition: Any, *, shape: str) -> Any:
    """The widget's definition as stored conditions: a list, or one condition (event/branch)."""
    if not isinstance(definition, dict) or not isinstance(definition.get("conditions"), list):
        raise WidgetConditionError(["The conditions could not be read; build them again."])
    items = definition["conditions"]
    errors: list[str] = []
    if any(isinstance(item, dict) and "match" in item for item in items):
        errors.append("Sequences take a plain list of conditions here: remove the nested groups.")
    if shape in (EVENT, BRANCH) and len(items) != 1:
        errors.append("Give exactly one condition.")
    if errors:
        raise WidgetConditionError(errors)
    converted = []
    for position, item in enumerate(items, start=1):
        try:
            converted += _from_widget(item, shape)
        except WidgetConditionError as exc:
            errors += [f"Condition {position}: {message}" for message in exc.messages]
    if errors:
        raise WidgetConditionError(errors)
    return converted[0] if shape in (EVENT, BRANCH) else converted


def _from_widget(item: dict, shape: str) -> list[dict]:
    field = item.get("field") or ""
    if field not in SHAPE_FIELDS[shape]:
        raise WidgetConditionError(["choose what to check from the list."])
    if field == "activity":
        return [_activity_from_widget(item)]
    conditions = _contact_from_widget(item)
    if shape == BRANCH and len(conditions) != 1:
        raise WidgetConditionError(["a branch checks one thing: use one value."])
    return conditions


def _activity_from_widget(item: dict) -> dict:
    if item.get("operator") != "at_least":
        raise WidgetConditionError(["only “did at least … times” can be used here."])
    if item.get("count") not in (None, 1) or item.get("days") is not None:
        raise WidgetConditionError(["use 1 time and leave the days empty: it counts one activity."])
    kind = (item.get("kind") or "").strip()
    if not kind:
        raise WidgetConditionError(["name the activity, e.g. order_placed."])
    where = [_where_from_widget(where) for where in item.get("where") or []]
    return {"activity": kind, "where": where}


def _where_from_widget(where: dict) -> dict:
    key, operator, value = (
        (where.get("key") or "").strip(),
        where.get("operator"),
        where.get("value"),
    )
    if not key:
        raise WidgetConditionError(["name the property in each “where”."])
    if operator in ("is_set", "is_empty"):
        return {"field": key, "op": "exists", "value": operator == "is_set"}
    if operator not in _OPS:
        raise WidgetConditionError([f"“where {key}” cannot use that comparison in a sequence."])
    return {"field": key, "op": _OPS[operator], "value": value}


def _contact_from_widget(item: dict) -> list[dict]:
    field, operator, value = item["field"], item.get("operator"), item.get("value")
    if operator in ("is_set", "is_empty") and field != "tags":
        name = f"properties.{item.get('key')}" if field == "property" else field
        return [{"contact": name, "op": "exists", "value": operator == "is_set"}]
    if field in _LIST_FIELDS and operator in ("in", "not_in"):
        if not value:
            raise WidgetConditionError(["choose at least one value."])
        return [{"contact": field, "op": operator, "value": list(value)}]
    if field == "tags":
        return _tags_from_widget(operator, value or [])
    if field == "lead_score":
        if operator == "between":
            low, high = (list(value or []) + [None, None])[:2]
            return [
                {"contact": "lead_score", "op": "gte", "value": low},
                {"contact": "lead_score", "op": "lte", "value": high},
            ]
        return [{"contact": "lead_score", "op": _OPS[operator], "value": value}]
    if field in _TEXT_FIELDS and operator in ("equals", "not_equals", "contains"):
        return [{"contact": field, "op": _OPS[operator], "value": value}]
    if field == "property" and operator in _OPS:
        key = (item.get("key") or "").strip()
        if not key:
            raise WidgetConditionError(["name the custom property."])
        return [{"contact": f"properties.{key}", "op": _OPS[operator], "value": value}]
    raise WidgetConditionError(["that comparison is not available in sequences yet."])


def _tags_from_widget(operator: str, tags: list) -> list[dict]:
    if operator == "has_all" or (operator == "has_any" and len(tags) == 1):
        if not tags:
            raise WidgetConditionError(["name at least one tag."])
        return [{"contact": "tags", "op": "contains", "value": tag} for tag in tags]
    raise WidgetConditionError(["tags: use “has all of”, or “has any of” with one tag."])


# --- Stored → widget --------------------------------------------------------------------------


def conditions_to_widget(conditions: Any, *, shape: str) -> dict:
    """Stored conditions as a widget definition; NotRepresentable if the widget cannot show them."""
    if shape in (EVENT, BRANCH):
        items = [] if not conditions else [conditions]
    else:
        items = list(conditions or [])
    if shape == CONTACTS:
        items = _merge_ranges(items)
    widget = [_to_widget(item) for item in items]
    return {"match": "any" if shape == ACTIVITIES else "all", "conditions": widget}


def _to_widget(item: Any) -> dict:
    if not isinstance(item, dict):
        raise NotRepresentable("not a condition")
    if "activity" in item:
        if set(item) - {"activity", "where"}:
            raise NotRepresentable("activity condition with extra keys")
        return {
            "field": "activity",
            "operator": "at_least",
            "kind": item["activity"],
            "count": 1,
            "days": None,
            "where": [_where_to_widget(where) for where in item.get("where") or []],
        }
    if "between" in item:
        return {"field": "lead_score", "operator": "between", "value": item["between"]}
    return _contact_to_widget(item)


def _where_to_widget(where: dict) -> dict:
    op = where.get("op", "eq")
    if op == "exists":
        operator = "is_set" if where.get("value", True) else "is_empty"
        return {"key": where.get("field"), "operator": operator}
    if op not in _REVERSE_OPS or op in ("in", "not_in"):
        raise NotRepresentable(op)
    return {"key": where.get("field"), "operator": _REVERSE_OPS[op], "value": where.get("value")}


def _contact_to_widget(item: dict) -> dict:
    name, op, value = item.get("contact") or "", item.get("op", "eq"), item.get("value")
    field, extra = name, {}
    if name.startswith("properties."):
        field, extra = "property", {"key": name.removeprefix("properties.")}
    if field not in CONTACT_FIELDS:
        raise NotRepresentable(name)
    if op == "exists" and field != "tags":
        return {"field": field, **extra, "operator": "is_set" if value else "is_empty"}
    if field in _LIST_FIELDS:
        if op in ("in", "not_in"):
            return {"field": field, "operator": op, "value": list(value or [])}
        if op == "eq":
            return {"field": field, "operator": "in", "value": [value]}
        raise NotRepresentable(name)
    if field == "tags" and op == "contains":
        return {"field": "tags", "operator": "has_any", "value": [value]}
    if field == "lead_score" and op in ("gte", "lte"):
        return {"field": field, "operator": op, "value": value}
    if field in _TEXT_FIELDS and op in ("eq", "ne", "contains"):
        return {"field": field, "operator": _REVERSE_OPS[op], "value": value}
    if field == "property" and op in _REVERSE_OPS and op not in ("in", "not_in"):
        return {"field": field, **extra, "operator": _REVERSE_OPS[op], "value": value}
    raise NotRepresentable(name)


def _merge_ranges(items: list) -> list:
    """lead_score gte X followed by lte Y (as the widget's “between” stores) shows as one range."""
    merged, skip = [], False
    for index, item in enumerate(items):
        if skip:
            skip = False
            continue
        following = items[index + 1] if index + 1 < len(items) else None
        if (
            isinstance(item, dict)
            and isinstance(following, dict)
            and item.get("contact") == following.get("contact") == "lead_score"
            and (item.get("op"), following.get("op")) == ("gte", "lte")
        ):
            merged.append({"between": [item.get("value"), following.get("value")]})
            skip = True
        else:
            merged.append(item)
    return merged
