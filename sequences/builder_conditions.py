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

from crm.conditions import legacy

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
    conditions = builder_shape(conditions, shape)
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


# --- Trees in the one condition language → the shapes above -------------------------------------
#
# Sequences migrated by `0011_conditions_in_new_words`, imported from YAML or installed from a
# playbook store trees ({"match", "conditions"} in crm's words); the builder still edits the
# shapes above. A tree the shapes can say is shown in the widget; any other stays JSON.

_TREE_OPS = {
    "equals": "eq", "not_equals": "ne", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte",
    "contains": "contains", "in": "in", "not_in": "not_in",
}  # fmt: skip


def _is_tree(value: Any) -> bool:
    return isinstance(value, dict) and "match" in value


def builder_shape(conditions: Any, shape: str) -> Any:
    """Stored conditions (a tree or the shapes above) in the shapes above; NotRepresentable."""
    if shape == EVENT and isinstance(conditions, dict) and _is_tree(conditions.get("where")):
        # An activity trigger: its kind, and its properties as a tree.
        where = conditions["where"]
        return {**conditions, "where": [_old_property(n) for n in _all_of(where)]}
    if not _is_tree(conditions):
        return conditions
    if not conditions.get("conditions"):
        return None if shape in (EVENT, BRANCH) else []
    if shape == ACTIVITIES:
        if conditions.get("match") != "any":
            raise NotRepresentable("goals and exits are any of a list of activities")
        return [_old_activity(sub) for sub in conditions["conditions"]]
    if shape == EVENT:
        return _old_activity(conditions)
    if shape == CONTACTS:
        return [_old_contact(node) for node in _all_of(conditions)]
    nodes = _all_of(conditions)  # BRANCH: one contact condition, or an activity ("event")
    if any(node.get("field") == "kind" for node in nodes):
        return _old_activity(conditions)
    if len(nodes) != 1:
        raise NotRepresentable("a branch tests one condition")
    return _old_contact(nodes[0])


def _all_of(tree: dict) -> list:
    if tree.get("match") != "all" or any(_is_tree(node) for node in tree["conditions"]):
        raise NotRepresentable("nested groups")
    return tree["conditions"]


def _old_property(node: dict) -> dict:
    if node.get("field") != "property":
        raise NotRepresentable(f"{node.get('field')} is not an activity property")
    if node["operator"] in ("is_set", "is_empty"):
        return {"field": node["key"], "op": "exists", "value": node["operator"] == "is_set"}
    if node["operator"] not in _TREE_OPS:
        raise NotRepresentable(f"operator {node['operator']}")
    return {"field": node["key"], "op": _TREE_OPS[node["operator"]], "value": node.get("value")}


def _old_activity(tree: dict) -> dict:
    nodes = _all_of(tree)
    kinds = [node for node in nodes if node.get("field") == "kind"]
    if len(kinds) != 1 or kinds[0].get("operator") != "in" or len(kinds[0]["value"]) != 1:
        raise NotRepresentable("one activity kind per condition")
    where = [_old_property(node) for node in nodes if node.get("field") != "kind"]
    return {"activity": kinds[0]["value"][0], "where": where}


def _old_contact(node: dict) -> dict:
    field = node.get("field", "")
    path = f"properties.{node['key']}" if field == "property" else field
    if node["operator"] in ("is_set", "is_empty"):
        return {"contact": path, "op": "exists", "value": node["operator"] == "is_set"}
    if field == "tags" and node["operator"] == "has_any":
        return {"contact": "tags", "op": "in", "value": node["value"]}
    if node["operator"] not in _TREE_OPS:
        raise NotRepresentable(f"operator {node['operator']}")
    return {"contact": path, "op": _TREE_OPS[node["operator"]], "value": node.get("value")}


def in_new_words(conditions: Any, *, shape: str) -> Any:
    """What the builder's forms store: the shapes above as the one language's trees.

    A branch stores a contact condition under "condition" and an activity under "event"
    (`branch_config`). Empty conditions are `{}`, as everywhere in the one language.
    """
    if not conditions:
        return {}
    if shape == ACTIVITIES:
        return legacy.sequence_activities_to_tree(conditions)[0]
    if shape == CONTACTS:
        return legacy.sequence_contacts_to_tree(conditions)[0]
    if shape == EVENT:
        return legacy.sequence_activity_to_tree(conditions)[0]
    return legacy.group([legacy.sequence_contact_to_condition(conditions)[0]])


def branch_config(condition: Any) -> dict:
    """A branch as stored: "event" for an activity done since entry, else "condition"."""
    if isinstance(condition, dict) and "activity" in condition:
        return {"event": in_new_words(condition, shape=EVENT)}
    return {"condition": in_new_words(condition, shape=BRANCH)}


def where_in_new_words(where: Any) -> dict:
    """An activity trigger's property conditions as a tree."""
    return legacy.sequence_where_to_tree(where)[0] if where else {}
