"""Configuration as code: one YAML file whose sections are registered by the apps that own them.

crm owns the engine and the registry; each app registers its sections from its
AppConfig.ready(), so crm never imports scoring or sequences. docs/configuration.md
documents the file and how to add a section.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import yaml
from django.contrib.auth import get_permission_codename
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, ValidationError
from django.db import models, transaction

SCHEMA_VERSION = 1
FILE_HEADER = (
    "# Nextstep configuration: `manage.py import_config FILE` applies it.\n"
    "# Every section and field is described in docs/configuration.md.\n"
)

Item = dict[str, Any]
Document = Mapping[str, list[Item]]


# --- Errors and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigError:
    """One problem in a config file, located by section, item key and field."""

    section: str
    key: str = ""
    field: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = self.section + (f"[{self.key}]" if self.key else "")
        if self.field:
            where = f"{where}.{self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message


class ConfigInvalid(Exception):
    """The file was refused; `errors` lists every problem found. Nothing was written."""

    def __init__(self, errors: Iterable[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SectionSummary:
    """What importing one section did (or, in a dry run, would do), as item keys."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # in the database but not in the file: never deleted

    @classmethod
    def from_outcomes(
        cls, outcomes: Mapping[str, Outcome], kept: Iterable[str] = ()
    ) -> SectionSummary:
        def keys(outcome: Outcome) -> tuple[str, ...]:
            return tuple(key for key, done in outcomes.items() if done == outcome)

        return cls(
            created=keys(Outcome.CREATED),
            updated=keys(Outcome.UPDATED),
            unchanged=keys(Outcome.UNCHANGED),
            kept=tuple(kept),
        )

    @property
    def is_changed(self) -> bool:
        return bool(self.created or self.updated)


@dataclass(frozen=True)
class ImportReport:
    sections: dict[str, SectionSummary]
    dry_run: bool = False

    @property
    def is_changed(self) -> bool:
        return any(summary.is_changed for summary in self.sections.values())


# --- The registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigSection:
    """A top-level section of the file, owned by one app.

    - `fields`: the item fields in the order they are written; anything else is refused.
    - `export()`: the items, in a stable order (by key, or by position for ordered things).
    - `validate(items, document)`: every problem, without writing. `items` are already
      mappings with a unique text key; `document` is the whole file, for references to
      other sections (look in the file and in the database).
    - `apply(items)`: create or update by key inside the import transaction, never delete.
      A dry run rolls the transaction back, so apply must only write to the database.
    - `order`: sections apply in ascending order, so dependencies come first
      (crm 10-30, scoring 100s, segments 200s, templates 300s, sequences 400s).
    - `model`: the model whose admin permissions guard the section: an importing user
      needs its `add` permission for every item the import creates and its `change`
      permission for every item it changes, exactly as in the admin.
    """

    name: str
    order: int
    fields: tuple[str, ...]
    export: Callable[[], list[Item]]
    validate: Callable[[list[Item], Document], list[ConfigError]]
    apply: Callable[[list[Item]], SectionSummary]
    key_field: str = "key"
    model: type[models.Model] | None = None


_sections: dict[str, ConfigSection] = {}


def register_section(section: ConfigSection) -> None:
    """Add a section to the file; call from the owning app's AppConfig.ready()."""
    if section.name == "version":
        raise ImproperlyConfigured("'version' is reserved for the file's schema version.")
    registered = _sections.get(section.name)
    if registered is not None and registered != section:
        raise ImproperlyConfigured(f"Config section {section.name!r} is already registered.")
    _sections[section.name] = section


def unregister_section(name: str) -> None:
    """Remove a section (for tests); unknown names are ignored."""
    _sections.pop(name, None)


def registered_sections() -> list[ConfigSection]:
    """Return the sections in the order they are written and applied."""
    return sorted(_sections.values(), key=lambda section: (section.order, section.name))


# --- Export ---------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Indent list items under their key and write multi-line text as a literal block."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def config_export() -> str:
    """Return the whole configuration as YAML text; the same data gives the same bytes."""
    document: dict[str, Any] = {"version": SCHEMA_VERSION}
    for section in registered_sections():
        document[section.name] = [
            {name: item[name] for name in section.fields} for item in section.export()
        ]
    return config_dump(document)


def config_dump(document: Mapping[str, Any]) -> str:
    """Write a document (`version` first, then sections) as YAML in the file's format."""
    # A huge width keeps each text on one line, so a changed wording is a one-line diff.
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
    return FILE_HEADER + body


# --- Import ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config file must not."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def config_import(text: str, *, user=None, dry_run: bool = False) -> ImportReport:
    """Validate every section, then apply them all in one transaction, or raise ConfigInvalid.

    With a `user` (the admin's import page, `import_config --user`), every item created
    needs the user's `add` permission on the section's model and every item changed its
    `change` permission, the checks the admin makes; one refusal rolls the whole import
    back. `user=None` is the operator's shell or code-defined content (demo, playbooks).
    """
    document = _parse(text)
    sections = [section for section in registered_sections() if section.name in document]
    checked = {section.name: _check_items(section, document[section.name]) for section in sections}
    items = {name: section_items for name, (section_items, _errors) in checked.items()}
    errors = _check_top_level(document)
    for section in sections:
        errors += checked[section.name][1] + section.validate(items[section.name], items)
    if errors:
        raise ConfigInvalid(errors)
    with transaction.atomic():
        summaries = {section.name: section.apply(items[section.name]) for section in sections}
        # Checked on what applying actually creates and changes, so an unchanged section
        # (say deal stages in a whole exported file) needs no permission, and anything the
        # user may not do is rolled back with the rest.
        refused = permission_errors(sections, summaries, user) if user is not None else []
        if dry_run or refused:
            transaction.set_rollback(True)
    if refused:
        raise ConfigInvalid(refused)
    return ImportReport(sections=summaries, dry_run=dry_run)


def permission_errors(
    sections: Iterable[ConfigSection], summaries: Mapping[str, SectionSummary], user
) -> list[ConfigError]:
    """One error per created or changed item the user has no admin permission for."""
    errors = []
    for section in sections:
        summary = summaries[section.name]
        if not summary.is_changed:
            continue
        if section.model is None:
            # A section that declares no model cannot be checked: only the shell may import it.
            errors.append(
                ConfigError(section.name, message="only an operator (import_config) may import")
            )
            continue
        for action, keys in (("add", summary.created), ("change", summary.updated)):
            permission = _permission(section.model, action)
            if keys and not user.has_perm(permission):
                plural = section.model._meta.verbose_name_plural
                errors += [
                    ConfigError(
                        section.name,
                        key,
                        message=f"you may not {action} {plural} (needs the {permission} "
                        "permission); nothing was imported",
                    )
                    for key in keys
                ]
    return errors


def _permission(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


def _parse(text: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "unreadable YAML"
        raise ConfigInvalid([ConfigError("", message=f"{where}{problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigInvalid([ConfigError("", message=f"unreadable YAML: {exc}")]) from exc
    if not isinstance(document, dict):
        message = "the file must be a mapping of sections, starting with `version: 1`"
        raise ConfigInvalid([ConfigError("", message=message)])
    return document


def _check_top_level(document: Mapping[str, Any]) -> list[ConfigError]:
    errors = []
    version = document.get("version")
    if type(version) is not int or version != SCHEMA_VERSION:  # True == 1 in Python
        found = "missing" if "version" not in document else f"{document['version']!r}"
        errors.append(ConfigError("version", message=f"must be {SCHEMA_VERSION} (found {found})"))
    known = ", ".join(section.name for section in registered_sections())
    for name in document:
        if name != "version" and name not in _sections:
            errors.append(ConfigError(str(name), message=f"unknown section (known: {known})"))
    return errors


def _check_items(section: ConfigSection, raw: Any) -> tuple[list[Item], list[ConfigError]]:
    """Keep the items that are mappings with a unique text key; report everything else."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [ConfigError(section.name, message="must be a list of items")]
    items, errors, positions = [], [], {}
    for position, item in enumerate(raw, start=1):
        label = f"#{position}"
        if not isinstance(item, dict):
            errors.append(ConfigError(section.name, label, message="must be a mapping of fields"))
            continue
        key = item.get(section.key_field)
        if key is None or key == "":
            errors.append(ConfigError(section.name, label, section.key_field, "is required"))
            continue
        if not isinstance(key, str):
            errors.append(ConfigError(section.name, label, section.key_field, "must be text"))
            continue
        errors += _unknown_fields(section, key, item)
        if key in positions:
            message = f"appears twice (items #{positions[key]} and #{position})"
            errors.append(ConfigError(section.name, key, section.key_field, message))
            continue
        positions[key] = position
        items.append(item)
    return items, errors


def _unknown_fields(section: ConfigSection, key: str, item: Item) -> list[ConfigError]:
    expected = ", ".join(section.fields)
    return [
        ConfigError(section.name, key, str(name), f"unknown field (expected: {expected})")
        for name in item
        if name not in section.fields
    ]


# --- Helpers for sections backed by a model with a unique key -------------------------------


@dataclass
class PlannedItem:
    """One item checked against the database: the instance to save and what saving does."""

    key: str
    instance: models.Model
    outcome: Outcome
    changed_fields: list[str] = field(default_factory=list)


def model_items_plan(
    *,
    section: str,
    model: type[models.Model],
    items: list[Item],
    fields: Iterable[str],
    key_field: str = "key",
) -> tuple[list[PlannedItem], list[ConfigError]]:
    """Match items to rows by key and clean them with the model's own validation."""
    fields = list(fields)
    keys = [item[key_field] for item in items]
    existing = model._default_manager.in_bulk(keys, field_name=key_field)
    planned, errors = [], []
    for item in items:
        key = item[key_field]
        instance = existing[key] if key in existing else model(**{key_field: key})
        before = _values(instance, fields)
        errors += model_item_clean(instance, item, fields=fields, section=section, key=key)
        after = _values(instance, fields)
        changed = [name for name in fields if after[name] != before[name]]
        outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
        if instance._state.adding:
            outcome, changed = Outcome.CREATED, fields
        planned.append(PlannedItem(key, instance, outcome, changed))
    return planned, errors


def model_items_save(planned: Iterable[PlannedItem]) -> None:
    """Save created and changed rows; unchanged rows are not written at all."""
    for item in planned:
        if item.outcome == Outcome.CREATED:
            item.instance.save()
        elif item.outcome == Outcome.UPDATED:
            # update_fields skips auto_now fields unless named, and updated_at should move.
            meta = item.instance._meta
            stamps = [f.name for f in meta.concrete_fields if getattr(f, "auto_now", False)]
            item.instance.save(update_fields=[*item.changed_fields, *stamps])


def model_item_clean(
    instance: models.Model, item: Item, *, fields: Iterable[str], section: str, key: str
) -> list[ConfigError]:
    """Set fields from the item (omitted ones to their default) and run full_clean().

    The model's validators are the single source of the rules; this adds only a type
    check, because Django would quietly turn 10.5 into 10 or "yes" into a name.
    """
    errors, failed = [], set()
    for name in fields:
        model_field = instance._meta.get_field(name)
        if item.get(name) is None:  # left out, or left empty as in `description:`
            if not model_field.has_default() and not model_field.blank:
                errors.append(ConfigError(section, key, name, "is required"))
                failed.add(name)
                continue
            value = model_field.get_default()
        else:
            value = item[name]
        problem = _type_problem(model_field, value)
        if problem:
            errors.append(ConfigError(section, key, name, problem))
            failed.add(name)
            continue
        setattr(instance, model_field.attname, value)
    others = {f.name for f in instance._meta.get_fields() if f.concrete} - set(fields)
    try:
        instance.full_clean(exclude=others | failed)
    except ValidationError as exc:
        errors += validation_errors(exc, section=section, key=key)
    return errors


def validation_errors(exc: ValidationError, *, section: str, key: str) -> list[ConfigError]:
    """Turn a Django ValidationError into ConfigErrors naming the field."""
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
    return [
        ConfigError(section, key, "" if name == NON_FIELD_ERRORS else name, message)
        for name, messages in by_field.items()
        for message in messages
    ]


def model_items_summary(
    model: type[models.Model], planned: list[PlannedItem], *, key_field: str = "key"
) -> SectionSummary:
    """Summarise planned items, listing rows the file leaves out as kept."""
    in_file = [item.key for item in planned]
    kept = model._default_manager.exclude(**{f"{key_field}__in": in_file}).order_by(key_field)
    return SectionSummary.from_outcomes(
        {item.key: item.outcome for item in planned},
        kept=kept.values_list(key_field, flat=True),
    )


def model_section(
    *,
    name: str,
    order: int,
    model: type[models.Model],
    fields: tuple[str, ...],
    ordering: tuple[str, ...] = ("key",),
    key_field: str = "key",
) -> ConfigSection:
    """Build a whole section whose items are rows of `model`, one field per model field."""
    plan = partial(model_items_plan, section=name, model=model, fields=fields, key_field=key_field)

    def export() -> list[Item]:
        return list(model._default_manager.order_by(*ordering).values(*fields))

    def validate(items: list[Item], document: Document) -> list[ConfigError]:
        return plan(items=items)[1]

    def apply(items: list[Item]) -> SectionSummary:
        planned, _errors = plan(items=items)
        model_items_save(planned)
        return model_items_summary(model, planned, key_field=key_field)

    return ConfigSection(
        name=name,
        order=order,
        fields=fields,
        export=export,
        validate=validate,
        apply=apply,
        key_field=key_field,
        model=model,
    )


def _type_problem(model_field: models.Field, value: Any) -> str:
    if value is None:
        return "" if model_field.null else "must have a value"
    if isinstance(model_field, models.BooleanField) and not isinstance(value, bool):
        return "must be true or false"
    if isinstance(model_field, models.IntegerField) and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        return "must be a whole number"
    if isinstance(model_field, models.CharField | models.TextField) and not isinstance(value, str):
        return "must be text (put quotes around values such as yes, no or 10)"
    return ""


def _values(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(instance, instance._meta.get_field(name).attname) for name in fields}
