"""sequences' sections of the configuration file: email templates (300) and sequences (400).

Imported by SequencesConfig.ready(); docs/sequences.md documents the fields. A
sequence's triggers and steps are written inside it; templates, topics and owners
are referred to by key (username for owners). Importing edits a sequence's draft
steps; an active sequence keeps running its published version until re-activated.
Status is not part of the file: imported sequences start as drafts.
"""

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from crm.conditions import legacy
from crm.config_io import (
    SCHEMA_VERSION,
    ConfigError,
    ConfigSection,
    Document,
    Item,
    Outcome,
    SectionSummary,
    config_dump,
    model_section,
    register_section,
    validation_errors,
)
from crm.models import ConsentTopic, Segment
from sequences.conditions import conditions_in_new_words
from sequences.models import EmailTemplate, Sequence, Step, Trigger

TEMPLATES = "email_templates"
SEQUENCES = "sequences"
TEMPLATE_FIELDS = (
    "key",
    "name",
    "subject",
    "preheader",
    "html",
    "text",
    "cta_label",
    "cta_url",
    "blocks",
    "is_marketing",
)
COLUMNS = (
    "key",
    "name",
    "description",
    "is_transactional",
    "priority",
    "reenrollment",
    "reenrollment_min_gap_days",
    "max_duration_days",
    "on_send_failure",
    "holdout_percent",
)
NESTED = {"audience": "audience_conditions", "goals": "goal_conditions", "exits": "exit_conditions"}
SEQUENCE_FIELDS = (
    *COLUMNS[:2],
    "description",
    "owner",
    "topic",
    *COLUMNS[3:],
    "audience_segment",
    *NESTED,
    "triggers",
    "steps",
)
TRIGGER_FIELDS = (
    "type",
    "activity_kind",
    "lifecycle_stage",
    "conditions",
    "segment",
    "include_existing_members",
    "date_property",
    "days_before",
    "is_yearly",
    "churn_risk_above",
)
SEGMENTS = "segments"
STEP_FIELDS = ("key", "type", "template", "config")


# --- Export ---------------------------------------------------------------------------------


def sequence_item(sequence: Sequence) -> Item:
    """One sequence as a file item, fields in SEQUENCE_FIELDS order."""
    item: Item = {name: getattr(sequence, name) for name in COLUMNS}
    item["owner"] = sequence.owner.get_username() if sequence.owner else None
    item["topic"] = sequence.topic.key if sequence.topic else None
    segment = sequence.audience_segment
    item["audience_segment"] = segment.key if segment else None
    for name, attribute in NESTED.items():
        item[name] = getattr(sequence, attribute)
    item["triggers"] = [
        trigger_item(trigger) for trigger in sequence.triggers.select_related("segment")
    ]
    item["steps"] = [
        {
            "key": step.key,
            "type": step.type,
            "template": step.template.key if step.template else None,
            "config": step.config,
        }
        for step in sequence.steps.select_related("template").order_by("position", "pk")
    ]
    return {name: item[name] for name in SEQUENCE_FIELDS}


def trigger_item(trigger: Trigger) -> Item:
    item = {name: getattr(trigger, name) for name in TRIGGER_FIELDS}
    item["segment"] = trigger.segment.key if trigger.segment else None
    return item


def sequences_export() -> list[Item]:
    queryset = Sequence.objects.select_related("owner", "topic", "audience_segment")
    queryset = queryset.order_by("key")
    return [sequence_item(sequence) for sequence in queryset]


def sequences_export_yaml(*, sequences: Iterable[Sequence]) -> str:
    """These sequences and every email template they send, as an importable config file."""
    items = [sequence_item(sequence) for sequence in sorted(sequences, key=lambda s: s.key)]
    keys = {step["template"] for item in items for step in item["steps"] if step["template"]}
    keys |= {
        key for item in items for step in item["steps"] for key in _variant_template_keys(step)
    }
    templates = EmailTemplate.objects.filter(key__in=keys).order_by("key")
    return config_dump(
        {
            "version": SCHEMA_VERSION,
            TEMPLATES: [{name: getattr(t, name) for name in TEMPLATE_FIELDS} for t in templates],
            SEQUENCES: items,
        }
    )


# --- Validate and apply ---------------------------------------------------------------------


class _Plan:
    """One item resolved against the database: the sequence, its triggers and steps."""

    def __init__(self, key: str):
        self.key = key
        self.sequence: Sequence | None = None
        self.triggers: list[Trigger] = []
        self.steps: list[Step] = []
        self.template_keys: list[str | None] = []
        self.outcome = Outcome.UNCHANGED
        self.errors: list[ConfigError] = []
        self.topic_key: str | None = None
        # Segment keys the same file creates: resolved when saving, after the segments.
        self.pending_segments: dict[str, str] = {}

    def error(self, field: str, message: str) -> None:
        self.errors.append(ConfigError(SEQUENCES, self.key, field, message))


def _normalised(item: Item) -> Item:
    defaults = {name: Sequence._meta.get_field(name).get_default() for name in COLUMNS}
    defaults.update(
        {"owner": None, "topic": None, "audience_segment": None, "triggers": [], "steps": []}
    )
    defaults.update({name: [] for name in NESTED})
    return {
        name: item[name] if item.get(name) is not None else defaults[name]
        for name in SEQUENCE_FIELDS
    }


def _plan_item(item: Item, document: Document) -> _Plan:
    holdout_given = item.get("holdout_percent") is not None
    item = _normalised(_sequence_in_new_words(item))
    plan = _Plan(item["key"])
    existing = Sequence.objects.filter(key=plan.key).first()
    if existing and not holdout_given:
        # A file from before holdouts never changes who a running sequence mails.
        item["holdout_percent"] = existing.holdout_percent
    before = sequence_item(existing) if existing else None
    plan.sequence = existing or Sequence(key=plan.key)
    for name in COLUMNS:
        setattr(plan.sequence, name, item[name])
    for name, attribute in NESTED.items():
        setattr(plan.sequence, attribute, item[name])
    _resolve_owner(plan, item["owner"])
    _resolve_topic(plan, item["topic"], document)
    plan.sequence.audience_segment = _segment(plan, item["audience_segment"], document, "")
    try:
        plan.sequence.full_clean(exclude=["current_version", "topic", "owner", "audience_segment"])
    except ValidationError as exc:
        errors = validation_errors(exc, section=SEQUENCES, key=plan.key)
        # A topic the same file creates is not in the database yet: it was checked above.
        pending_topic = plan.sequence.topic is None and plan.topic_key
        plan.errors += [e for e in errors if not (pending_topic and e.field == "topic")]
    _plan_triggers(plan, item["triggers"], document)
    _plan_steps(plan, item["steps"], document)
    if existing is None:
        plan.outcome = Outcome.CREATED
    elif before != item:
        plan.outcome = Outcome.UPDATED
    return plan


def _resolve_owner(plan: _Plan, username: Any) -> None:
    plan.sequence.owner = None
    if username is None:
        return
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        plan.error("owner", f"there is no user {username!r}")
    plan.sequence.owner = user


def _resolve_topic(plan: _Plan, key: Any, document: Document) -> None:
    plan.sequence.topic = None
    if key is None:
        return
    topic = ConsentTopic.objects.filter(key=key).first()
    in_file = any(t.get("key") == key for t in document.get("consent_topics", []))
    if topic is None and not in_file:
        plan.error("topic", f"there is no consent topic {key!r}")
    plan.sequence.topic = topic
    plan.topic_key = key


def _segment(plan: _Plan, key: Any, document: Document, where: str) -> Segment | None:
    """The segment named `key`, None when absent or only in the file (noted for saving)."""
    if key is None:
        return None
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        field = f"{where}.segment" if where else "audience_segment"
        if any(s.get("key") == key for s in document.get(SEGMENTS, [])):
            plan.pending_segments[where] = key
        else:
            plan.error(field, f"there is no segment {key!r}")
    return segment


def _plan_triggers(plan: _Plan, raw: Any, document: Document) -> None:
    if not isinstance(raw, list):
        plan.error("triggers", "must be a list")
        return
    for index, data in enumerate(raw):
        if not isinstance(data, dict) or set(data) - set(TRIGGER_FIELDS):
            plan.error(f"triggers[{index}]", f"must be a mapping of {', '.join(TRIGGER_FIELDS)}")
            continue
        where = f"triggers[{index}]"
        values = {name: data[name] for name in TRIGGER_FIELDS if data.get(name)}
        values["segment"] = _segment(plan, data.get("segment"), document, where)
        trigger = Trigger(**values)
        exclude = ["sequence", "segment"] if where in plan.pending_segments else ["sequence"]
        _clean(plan, trigger, where, exclude=exclude)
        plan.triggers.append(trigger)


def _plan_steps(plan: _Plan, raw: Any, document: Document) -> None:
    if not isinstance(raw, list):
        plan.error("steps", "must be a list")
        return
    in_file = {t.get("key") for t in document.get(TEMPLATES, [])}
    templates = EmailTemplate.objects.in_bulk(
        [s.get("template") for s in raw if isinstance(s, dict) and s.get("template")],
        field_name="key",
    )
    seen = set()
    for position, data in enumerate(raw):
        where = f"steps[{position}]"
        if not isinstance(data, dict) or set(data) - set(STEP_FIELDS):
            plan.error(where, f"must be a mapping of {', '.join(STEP_FIELDS)}")
            continue
        template_key = data.get("template")
        if template_key and template_key not in templates and template_key not in in_file:
            plan.error(f"{where}.template", f"there is no email template {template_key!r}")
        for index, key in enumerate(_variant_template_keys(data)):
            if not EmailTemplate.objects.filter(key=key).exists() and key not in in_file:
                field = f"{where}.config.variants[{index}].template"
                plan.error(field, f"there is no email template {key!r}")
        if data.get("key") in seen:
            plan.error(f"{where}.key", "appears twice")
        seen.add(data.get("key"))
        step = Step(
            position=position,
            key=data.get("key") or "",
            type=data.get("type") or "",
            template=templates.get(template_key),
            config=data.get("config") or {},
        )
        _clean(plan, step, where, exclude=["sequence", "template"])
        plan.steps.append(step)
        plan.template_keys.append(template_key)


def _variant_template_keys(step: Item) -> list[str]:
    config = step.get("config")
    variants = config.get("variants") if isinstance(config, dict) else None
    if not isinstance(variants, list):
        return []
    return [v.get("template") if isinstance(v, dict) else None for v in variants]


def _clean(plan: _Plan, instance, where: str, *, exclude: list[str]) -> None:
    try:
        instance.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as exc:
        for error in validation_errors(exc, section=SEQUENCES, key=plan.key):
            if error.message == "An email step needs a template.":
                continue  # checked against the file above
            plan.error(f"{where}.{error.field}".rstrip("."), error.message)


def sequences_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return [error for item in items for error in _plan_item(item, document).errors]


def sequences_apply(items: list[Item]) -> SectionSummary:
    """Create or update each sequence; triggers and steps are replaced when they changed."""
    outcomes = {}
    for item in items:
        plan = _plan_item(item, {})
        outcomes[plan.key] = plan.outcome
        if plan.outcome != Outcome.UNCHANGED:
            _save(plan)
    kept = Sequence.objects.exclude(key__in=list(outcomes)).order_by("key")
    return SectionSummary.from_outcomes(outcomes, kept=kept.values_list("key", flat=True))


@transaction.atomic
def _save(plan: _Plan) -> None:
    sequence = plan.sequence
    if sequence.topic is None and plan.topic_key:
        sequence.topic = ConsentTopic.objects.get(key=plan.topic_key)
    if "" in plan.pending_segments:
        sequence.audience_segment = Segment.objects.get(key=plan.pending_segments[""])
    sequence.save()
    sequence.triggers.all().delete()
    sequence.steps.all().delete()
    for index, trigger in enumerate(plan.triggers):
        trigger.sequence = sequence
        pending = plan.pending_segments.get(f"triggers[{index}]")
        if pending:
            trigger.segment = Segment.objects.get(key=pending)
        trigger.save()
    templates = EmailTemplate.objects.in_bulk(
        [k for k in plan.template_keys if k], field_name="key"
    )
    for step, template_key in zip(plan.steps, plan.template_keys, strict=True):
        step.sequence = sequence
        step.template = templates.get(template_key) if template_key else None
        step.save()


def _templates_section():
    """The generic model section, reading blocks' old `when` lists in the new words."""
    section = model_section(name=TEMPLATES, order=300, model=EmailTemplate, fields=TEMPLATE_FIELDS)

    def translated(items: list[Item]) -> list[Item]:
        return [_template_in_new_words(item) for item in items]

    return dataclasses.replace(
        section,
        validate=lambda items, document: section.validate(translated(items), document),
        apply=lambda items: section.apply(translated(items)),
    )


def _template_in_new_words(item: Item) -> Item:
    blocks = item.get("blocks")
    if not isinstance(blocks, list):
        return item
    where = f"{TEMPLATES}[{item.get('key')}]"
    return {
        **item,
        "blocks": [
            {
                **block,
                "when": conditions_in_new_words(
                    block["when"], kind="contacts", where=f"{where}.blocks[{index}].when"
                ),
            }
            if isinstance(block, dict) and isinstance(block.get("when"), list)
            else block
            for index, block in enumerate(blocks)
        ],
    }


# --- The old condition words ----------------------------------------------------------------

#: Sequence fields holding conditions, and what kind of conditions they hold.
CONDITION_KINDS = {"audience": "contacts", "goals": "activities", "exits": "activities"}


def _sequence_in_new_words(item: Item) -> Item:
    """The item with every old-shaped condition translated (each one warns)."""
    where = f"{SEQUENCES}[{item.get('key')}]"
    item = dict(item)
    for name, kind in CONDITION_KINDS.items():
        if name in item:
            item[name] = conditions_in_new_words(item[name], kind=kind, where=f"{where}.{name}")
    if isinstance(item.get("triggers"), list):
        item["triggers"] = [
            {
                **trigger,
                "conditions": conditions_in_new_words(
                    trigger["conditions"],
                    kind="properties",
                    where=f"{where}.triggers[{index}].conditions",
                ),
            }
            if isinstance(trigger, dict) and "conditions" in trigger
            else trigger
            for index, trigger in enumerate(item["triggers"])
        ]
    if isinstance(item.get("steps"), list):
        item["steps"] = [
            _step_in_new_words(step, f"{where}.steps[{index}].config")
            for index, step in enumerate(item["steps"])
        ]
    return item


def _step_in_new_words(step: Any, where: str) -> Any:
    config = step.get("config") if isinstance(step, dict) else None
    if not isinstance(config, dict):
        return step
    config = dict(config)
    try:
        event = config.get("event")
        if isinstance(event, dict) and "activity" in event:
            config["event"], notes = legacy.sequence_activity_to_tree(event)
            legacy.warn_deprecated(f"{where}.event", notes)
        condition = config.get("condition")
        if isinstance(condition, dict) and "activity" in condition:
            # The old branch on an activity since enrolling is now `event`.
            config["event"], notes = legacy.sequence_activity_to_tree(config.pop("condition"))
            legacy.warn_deprecated(
                f"{where}.condition", [*notes, "'condition: {activity}' is now 'event'"]
            )
        elif isinstance(condition, dict) and "contact" in condition:
            part, notes = legacy.sequence_contact_to_condition(condition)
            config["condition"] = legacy.group([part])
            legacy.warn_deprecated(f"{where}.condition", notes)
    except legacy.LegacyConditionError:
        return step  # validation explains it
    return {**step, "config": config}


register_section(_templates_section())
register_section(
    ConfigSection(
        name=SEQUENCES,
        order=400,
        fields=SEQUENCE_FIELDS,
        export=sequences_export,
        validate=sequences_validate,
        apply=sequences_apply,
        model=Sequence,
    )
)
