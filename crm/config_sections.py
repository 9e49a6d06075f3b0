"""crm's sections of the configuration file: consent topics, lifecycle stages, deal stages.

Imported by CrmConfig.ready(). docs/configuration.md documents every field.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

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
    model_section,
    register_section,
    validation_errors,
)
from crm.models import ConsentText, ConsentTopic, DealStage, LifecycleStage, Segment
from crm.segments.validation import References, definition_problems, segment_references
from crm.services.segments import segment_create, segment_update

# --- Consent topics and their append-only wording versions ----------------------------------

TOPIC_FIELDS = ("key", "name", "description", "is_active")
TOPIC_SECTION = "consent_topics"


@dataclass
class PlannedTopic:
    topic: PlannedItem
    new_wordings: list[tuple[int, str]] = field(default_factory=list)


def topics_export() -> list[Item]:
    """Return every topic by key, with its wording versions oldest first."""
    texts = ConsentText.objects.order_by("topic_id", "version").values_list(
        "topic_id", "version", "text"
    )
    wordings: dict[int, list[Item]] = {}
    for topic_id, version, text in texts:
        wordings.setdefault(topic_id, []).append({"version": version, "text": text.strip()})
    return [
        {
            **{name: getattr(topic, name) for name in TOPIC_FIELDS},
            "wordings": wordings.get(topic.pk, []),
        }
        for topic in ConsentTopic.objects.order_by("key")
    ]


def topics_plan(items: list[Item]) -> tuple[list[PlannedTopic], list[ConfigError]]:
    planned_rows, errors = model_items_plan(
        section=TOPIC_SECTION, model=ConsentTopic, items=items, fields=TOPIC_FIELDS
    )
    stored = _stored_wordings([row.instance for row in planned_rows])
    planned = []
    for item, row in zip(items, planned_rows, strict=True):
        new, wording_errors = _wordings_plan(row.key, item.get("wordings", []), stored[row.key])
        errors += wording_errors
        if new and row.outcome == Outcome.UNCHANGED:
            row.outcome = Outcome.UPDATED
        planned.append(PlannedTopic(row, new))
    return planned, errors


def topics_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return topics_plan(items)[1]


def topics_apply(items: list[Item]) -> SectionSummary:
    """Save topics, then append their missing wording versions with the file's numbers."""
    planned, _errors = topics_plan(items)
    model_items_save(row.topic for row in planned)
    for row in planned:
        for version, text in row.new_wordings:
            ConsentText.objects.create(topic=row.topic.instance, version=version, text=text)
    return model_items_summary(ConsentTopic, [row.topic for row in planned])


def _stored_wordings(topics: list[ConsentTopic]) -> dict[str, dict[int, str]]:
    stored: dict[str, dict[int, str]] = {topic.key: {} for topic in topics}
    saved = [topic.pk for topic in topics if topic.pk is not None]
    rows = ConsentText.objects.filter(topic_id__in=saved).values_list(
        "topic__key", "version", "text"
    )
    for key, version, text in rows:
        stored[key][version] = text
    return stored


def _wordings_plan(
    key: str, raw: object, stored: dict[int, str]
) -> tuple[list[tuple[int, str]], list[ConfigError]]:
    """Return the versions to add; published wording may be repeated but never changed."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [ConfigError(TOPIC_SECTION, key, "wordings", "must be a list of versions")]
    new, seen, errors = {}, set(), []
    for position, wording in enumerate(raw, start=1):
        version, text, wording_errors = _wording_clean(key, position, wording)
        errors += wording_errors
        if wording_errors:
            continue
        where = f"wordings[{version}]"
        if version in seen:
            errors.append(ConfigError(TOPIC_SECTION, key, f"{where}.version", "appears twice"))
        elif version not in stored:
            new[version] = text
        elif stored[version].strip() != text:
            message = (
                "published wording cannot change; add the new wording as version "
                f"{max([*stored, *new]) + 1} instead"
            )
            errors.append(ConfigError(TOPIC_SECTION, key, f"{where}.text", message))
        seen.add(version)
    if not errors:
        errors += _gaps(key, [*stored, *new])
    return sorted(new.items()), errors


def _wording_clean(key: str, position: int, wording: object) -> tuple[int, str, list[ConfigError]]:
    if not isinstance(wording, dict):
        return (
            0,
            "",
            [ConfigError(TOPIC_SECTION, key, f"wordings[#{position}]", "must be a mapping")],
        )
    version = wording.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        where = f"wordings[#{position}].version"
        return 0, "", [ConfigError(TOPIC_SECTION, key, where, "must be a whole number from 1")]
    where = f"wordings[{version}]"
    errors = [
        ConfigError(
            TOPIC_SECTION, key, f"{where}.{name}", "unknown field (expected: version, text)"
        )
        for name in wording
        if name not in ("version", "text")
    ]
    text = wording.get("text")
    if not isinstance(text, str):
        return 0, "", [*errors, ConfigError(TOPIC_SECTION, key, f"{where}.text", "must be text")]
    # Surrounding whitespace is not wording: consent_text_publish strips it too.
    text = text.strip()
    try:
        ConsentText(version=version, text=text).full_clean(
            exclude=["topic", "text_sha256"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        errors += [
            ConfigError(TOPIC_SECTION, key, f"{where}.{error.field}", error.message)
            for error in validation_errors(exc, section=TOPIC_SECTION, key=key)
        ]
    return version, text, errors


def _gaps(key: str, versions: list[int]) -> list[ConfigError]:
    missing = sorted(set(range(1, max(versions, default=0) + 1)) - set(versions))
    if not missing:
        return []
    message = "versions are numbered 1, 2, 3… without gaps; missing " + ", ".join(
        str(version) for version in missing
    )
    return [ConfigError(TOPIC_SECTION, key, "wordings", message)]


register_section(
    ConfigSection(
        name=TOPIC_SECTION,
        order=10,
        fields=(*TOPIC_FIELDS, "wordings"),
        export=topics_export,
        validate=topics_validate,
        apply=topics_apply,
        model=ConsentTopic,
    )
)
register_section(
    model_section(
        name="lifecycle_stages",
        order=20,
        model=LifecycleStage,
        fields=("key", "name", "description", "position", "is_customer"),
        ordering=("position", "key"),
    )
)
register_section(
    model_section(
        name="deal_stages",
        order=30,
        model=DealStage,
        fields=("key", "name", "position", "win_probability", "outcome"),
        ordering=("position", "key"),
    )
)


# --- Segments: definitions by key, segment conditions naming other segments by key ----------

SEGMENT_SECTION = "segments"
SEGMENT_FIELDS = ("key", "name", "description", "owner", "definition")


def segments_export() -> list[Item]:
    """Return every segment by key; owners by username, so files move between installs."""
    return [
        {
            "key": segment.key,
            "name": segment.name,
            "description": segment.description,
            "owner": segment.owner.get_username() if segment.owner else "",
            "definition": segment.definition,
        }
        for segment in Segment.objects.select_related("owner").order_by("key")
    ]


def segments_plan(
    items: list[Item], document: Document
) -> tuple[list[PlannedItem], list[ConfigError]]:
    planned, errors = model_items_plan(
        section=SEGMENT_SECTION, model=Segment, items=items, fields=("key", "name", "description")
    )
    owners = _segment_owners(items)
    in_file = {item["key"]: item.get("definition") for item in items}
    references = References.load(extra_segments=in_file)
    for item, row in zip(items, planned, strict=True):
        errors += _segment_owner_errors(item, owners)
        errors += [
            ConfigError(SEGMENT_SECTION, row.key, _definition_field(problem), problem.message)
            for problem in definition_problems(
                item.get("definition"), references=references, segment_key=row.key
            )
        ]
        _plan_segment_extras(row, item, owners)
    return planned, errors


def _definition_field(problem) -> str:
    return f"definition[{problem.position}]" if problem.position else "definition"


def _segment_owners(items: list[Item]) -> dict[str, object]:
    names = {item.get("owner") for item in items if isinstance(item.get("owner"), str)}
    users = get_user_model().objects.filter(username__in=names - {""})
    return {user.get_username(): user for user in users}


def _segment_owner_errors(item: Item, owners: dict[str, object]) -> list[ConfigError]:
    owner = item.get("owner") or ""
    if not isinstance(owner, str):
        return [ConfigError(SEGMENT_SECTION, item["key"], "owner", "must be a username (text)")]
    if owner and owner not in owners:
        return [ConfigError(SEGMENT_SECTION, item["key"], "owner", f"no user {owner!r}")]
    return []


def _plan_segment_extras(row: PlannedItem, item: Item, owners: dict[str, object]) -> None:
    """Fold the owner and definition (not plain model fields here) into the plan."""
    owner = owners.get(item.get("owner") or "")
    segment = row.instance
    changes = {}
    if segment.owner_id != (owner.pk if owner else None):
        changes["owner"] = owner
    if segment.definition != item.get("definition"):
        changes["definition"] = item.get("definition")
    for name, value in changes.items():
        setattr(segment, name, value)
    if changes and row.outcome == Outcome.UNCHANGED:
        row.outcome = Outcome.UPDATED
    if row.outcome == Outcome.UPDATED:
        row.changed_fields = sorted({*row.changed_fields, *changes})


def segments_validate(items: list[Item], document: Document) -> list[ConfigError]:
    return segments_plan(items, document)[1]


def segments_apply(items: list[Item]) -> SectionSummary:
    """Create or update segments, those named by others first, through the services."""
    planned, _errors = segments_plan(items, {})
    by_key = {row.key: row for row in planned}
    for key in _dependencies_first(by_key):
        row = by_key[key]
        segment = row.instance
        if row.outcome == Outcome.CREATED:
            segment_create(**{name: getattr(segment, name) for name in SEGMENT_FIELDS})
        elif row.outcome == Outcome.UPDATED:
            fields = {name: getattr(segment, name) for name in row.changed_fields if name != "key"}
            segment_update(segment=segment, **fields)
    return model_items_summary(Segment, planned)


def _dependencies_first(by_key: dict[str, PlannedItem]) -> list[str]:
    """Keys ordered so a segment comes after the segments it names (validation refused cycles)."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen or key not in by_key:
            return
        seen.add(key)
        for name in sorted(segment_references(by_key[key].instance.definition)):
            visit(name)
        ordered.append(key)

    for key in sorted(by_key):
        visit(key)
    return ordered


register_section(
    ConfigSection(
        name=SEGMENT_SECTION,
        order=200,
        fields=SEGMENT_FIELDS,
        export=segments_export,
        validate=segments_validate,
        apply=segments_apply,
        model=Segment,
    )
)
