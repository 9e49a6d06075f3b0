import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.config_io import (
    ConfigError,
    ConfigInvalid,
    ConfigSection,
    SectionSummary,
    config_export,
    config_import,
    register_section,
    unregister_section,
)
from crm.models import ConsentText, ConsentTopic, DealStage, LifecycleStage
from crm.services import consent_text_publish
from tests.factories import ConsentTopicFactory, DealStageFactory, LifecycleStageFactory

WRITES = ("INSERT", "UPDATE", "DELETE")


def empty_the_database():
    """Remove the stages and topics migrations seed; ledger rows need raw SQL to go."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_consententry")
        cursor.execute("DELETE FROM crm_consenttext")
    ConsentTopic.objects.all().delete()
    DealStage.objects.all().delete()
    LifecycleStage.objects.all().delete()


def edited(text, change):
    """Return the file text after change(document) edits its parsed form."""
    document = yaml.safe_load(text)
    change(document)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def item(document, section, key):
    return next(entry for entry in document[section] if entry["key"] == key)


@pytest.fixture
def richer_setup(db):
    """Defaults plus a multi-line, non-ASCII wording history and custom stages."""
    newsletter = ConsentTopic.objects.get(key="newsletter")
    consent_text_publish(
        topic=newsletter, text="Ja, schickt mir den Newsletter.\n\nJederzeit kündbar."
    )
    webinars = ConsentTopicFactory(key="webinars", name="Webinars", is_active=False)
    consent_text_publish(topic=webinars, text="Yes: invite me to webinars — 'no' means no.")
    LifecycleStageFactory(key="evangelist", name="Evangelist", description="Tells friends.")
    DealStageFactory(key="pilot", name="Pilot", position=15, win_probability=40)


@pytest.mark.django_db
def test_export_import_into_an_empty_database_export_gives_the_same_file(richer_setup):
    exported = config_export()
    empty_the_database()

    report = config_import(exported)

    assert config_export() == exported
    assert report.sections["deal_stages"].created[:3] == ("qualification", "discovery", "pilot")
    assert not any(summary.updated or summary.kept for summary in report.sections.values())


@pytest.mark.django_db
def test_import_into_an_empty_database_recreates_topics_wordings_and_stages(richer_setup):
    exported = config_export()
    empty_the_database()

    config_import(exported)

    newsletter = ConsentTopic.objects.get(key="newsletter")
    assert list(newsletter.texts.order_by("version").values_list("version", "text")) == [
        (1, "Yes, send me the monthly newsletter. I can unsubscribe at any time."),
        (2, "Ja, schickt mir den Newsletter.\n\nJederzeit kündbar."),
    ]
    assert ConsentTopic.objects.get(key="webinars").is_active is False
    pilot = DealStage.objects.get(key="pilot")
    assert (pilot.name, pilot.position, pilot.win_probability, pilot.outcome) == (
        "Pilot",
        15,
        40,
        "open",
    )
    assert LifecycleStage.objects.get(key="new_customer").is_customer is True


@pytest.mark.django_db
def test_second_import_reports_everything_unchanged_and_writes_nothing(richer_setup):
    exported = config_export()

    with CaptureQueriesContext(connection) as queries:
        report = config_import(exported)

    assert not report.is_changed
    assert report.sections["consent_topics"].unchanged == (
        "newsletter",
        "offers",
        "product_updates",
        "webinars",
    )
    writes = [query["sql"] for query in queries if query["sql"].lstrip().startswith(WRITES)]
    assert writes == []


@pytest.mark.django_db
def test_import_updates_by_key_and_keeps_objects_the_file_leaves_out():
    def change(document):
        item(document, "deal_stages", "proposal")["win_probability"] = 60
        document["deal_stages"] = [s for s in document["deal_stages"] if s["key"] != "lost"]
        document["deal_stages"].append(
            {"key": "pilot", "name": "Pilot", "win_probability": 40, "outcome": "open"}
        )

    report = config_import(edited(config_export(), change))

    summary = report.sections["deal_stages"]
    assert (summary.created, summary.updated, summary.kept) == (
        ("pilot",),
        ("proposal",),
        ("lost",),
    )
    assert DealStage.objects.get(key="proposal").win_probability == 60
    assert DealStage.objects.filter(key="lost").exists()
    assert DealStage.objects.get(key="pilot").position == 0


@pytest.mark.django_db
def test_a_new_wording_version_is_appended_and_old_versions_stay():
    def change(document):
        wordings = item(document, "consent_topics", "offers")["wordings"]
        wordings.append({"version": 2, "text": "  Yes, send me offers.\n"})

    report = config_import(edited(config_export(), change))

    assert report.sections["consent_topics"].updated == ("offers",)
    texts = ConsentText.objects.filter(topic__key="offers").order_by("version")
    assert [(text.version, text.text) for text in texts][1] == (2, "Yes, send me offers.")
    assert texts.count() == 2


@pytest.mark.django_db
def test_a_section_left_out_of_the_file_is_not_touched():
    text = "version: 1\ndeal_stages:\n  - {key: pilot, name: Pilot, win_probability: 40}\n"

    report = config_import(text)

    assert list(report.sections) == ["deal_stages"]
    assert LifecycleStage.objects.count() == 8


@pytest.mark.django_db
def test_fields_left_out_or_left_empty_take_their_default():
    LifecycleStageFactory(key="fan", name="Fan", description="Loves us", position=5)
    text = "version: 1\nlifecycle_stages:\n  - key: fan\n    name: Fan\n    description:\n"

    report = config_import(text)

    fan = LifecycleStage.objects.get(key="fan")
    assert (fan.description, fan.position, fan.is_customer) == ("", 0, False)
    assert report.sections["lifecycle_stages"].updated == ("fan",)


def bad_probability(document):
    item(document, "deal_stages", "proposal")["win_probability"] = 150


def unknown_outcome(document):
    item(document, "deal_stages", "proposal")["outcome"] = "maybe"


def missing_key(document):
    del document["deal_stages"][2]["key"]


def duplicate_key(document):
    document["deal_stages"].append(dict(item(document, "deal_stages", "proposal")))


def unknown_section(document):
    document["segmentz"] = []


def changed_wording(document):
    item(document, "consent_topics", "newsletter")["wordings"][0]["text"] = "Send me news."


def text_for_a_number(document):
    item(document, "deal_stages", "proposal")["win_probability"] = "high"


def unknown_field(document):
    item(document, "lifecycle_stages", "churned")["colour"] = "red"


def required_field_missing(document):
    document["deal_stages"].append({"key": "pilot", "name": "Pilot"})


def wording_gap(document):
    item(document, "consent_topics", "offers")["wordings"].append({"version": 3, "text": "Hi"})


def bad_slug(document):
    document["lifecycle_stages"].append({"key": "Big Fans", "name": "Big fans"})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "section", "key", "field", "message"),
    [
        (bad_probability, "deal_stages", "proposal", "win_probability", "less than or equal"),
        (unknown_outcome, "deal_stages", "proposal", "outcome", "not a valid choice"),
        (missing_key, "deal_stages", "#3", "key", "is required"),
        (duplicate_key, "deal_stages", "proposal", "key", "appears twice (items #3 and #7)"),
        (unknown_section, "segmentz", "", "", "unknown section"),
        (
            changed_wording,
            "consent_topics",
            "newsletter",
            "wordings[1].text",
            "published wording cannot change; add the new wording as version 2",
        ),
        (text_for_a_number, "deal_stages", "proposal", "win_probability", "whole number"),
        (unknown_field, "lifecycle_stages", "churned", "colour", "unknown field"),
        (required_field_missing, "deal_stages", "pilot", "win_probability", "is required"),
        (wording_gap, "consent_topics", "offers", "wordings", "missing 2"),
        (bad_slug, "lifecycle_stages", "Big Fans", "key", "lower-case letters"),
    ],
)
def test_an_invalid_file_changes_nothing_and_names_section_key_and_field(
    change, section, key, field, message
):
    before = config_export()

    def change_and_add_a_valid_stage(document):
        document["lifecycle_stages"].append({"key": "valid_new", "name": "Valid"})
        change(document)

    with pytest.raises(ConfigInvalid) as raised:
        config_import(edited(before, change_and_add_a_valid_stage))

    errors = raised.value.errors
    assert {(error.section, error.key, error.field) for error in errors} == {(section, key, field)}
    assert any(message in error.message for error in errors)
    assert config_export() == before
    assert not LifecycleStage.objects.filter(key="valid_new").exists()


@pytest.mark.django_db
def test_an_error_reads_as_section_key_field_and_message():
    text = edited(config_export(), bad_probability)

    with pytest.raises(ConfigInvalid) as raised:
        config_import(text)

    assert str(raised.value) == (
        "deal_stages[proposal].win_probability: Ensure this value is less than or equal to 100."
    )


@pytest.mark.django_db
def test_every_error_in_every_section_is_reported_at_once():
    def change(document):
        bad_probability(document)
        changed_wording(document)
        unknown_field(document)

    with pytest.raises(ConfigInvalid) as raised:
        config_import(edited(config_export(), change))

    assert [error.section for error in raised.value.errors] == [
        "consent_topics",
        "lifecycle_stages",
        "deal_stages",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\ndeal_stages:\n  - key: pilot\n   name: Pilot\n", "line 4, column"),
        ("version: 1\ndeal_stages: []\ndeal_stages: []\n", "line 3, column 1: found the key"),
        ("deal_stages: []\n", "version: must be 1 (found missing)"),
        ("version: 2\n", "version: must be 1 (found 2)"),
        ("version: true\n", "version: must be 1 (found True)"),
        ("- just a list\n", "the file must be a mapping of sections"),
    ],
)
def test_unreadable_files_are_refused_with_the_place_of_the_problem(text, message):
    before = config_export()

    with pytest.raises(ConfigInvalid) as raised:
        config_import(text)

    assert message in str(raised.value)
    assert config_export() == before


@pytest.mark.django_db
def test_a_dry_run_reports_the_changes_and_writes_nothing():
    before = config_export()
    text = edited(before, bad_probability).replace("win_probability: 150", "win_probability: 55")

    report = config_import(text, dry_run=True)

    assert report.sections["deal_stages"].updated == ("proposal",)
    assert config_export() == before


# --- The registry ---------------------------------------------------------------------------


@pytest.fixture
def widgets_section():
    """A section another app might register, applied between lifecycle and deal stages."""
    applied = []

    def validate(items, document):
        return [
            ConfigError("widgets", entry["key"], "stage", "no such lifecycle stage")
            for entry in items
            if entry["stage"]
            not in {stage["key"] for stage in document.get("lifecycle_stages", [])}
            and not LifecycleStage.objects.filter(key=entry["stage"]).exists()
        ]

    def apply(items):
        # Lifecycle stages (order 20) are already written when order 25 applies.
        applied.extend(
            (entry["key"], LifecycleStage.objects.filter(key=entry["stage"]).exists())
            for entry in items
        )
        return SectionSummary(created=tuple(entry["key"] for entry in items))

    register_section(
        ConfigSection(
            name="widgets",
            order=25,
            fields=("key", "stage"),
            export=lambda: [{"stage": "subscriber", "key": "gauge"}],
            validate=validate,
            apply=apply,
        )
    )
    yield applied
    unregister_section("widgets")


@pytest.mark.django_db
def test_a_registered_section_is_exported_and_applied_in_its_order(widgets_section):
    def change(document):
        document["lifecycle_stages"].append({"key": "fan", "name": "Fan"})
        document["widgets"].append({"key": "dial", "stage": "fan"})

    exported = config_export()
    report = config_import(edited(exported, change))

    assert list(yaml.safe_load(exported))[2:4] == ["lifecycle_stages", "widgets"]
    assert "  - key: gauge\n    stage: subscriber\n" in exported
    # Sections of other apps (order 100 and up) follow crm's; only the first four are ours.
    assert list(report.sections)[:4] == [
        "consent_topics",
        "lifecycle_stages",
        "widgets",
        "deal_stages",
    ]
    assert widgets_section == [("gauge", True), ("dial", True)]


@pytest.mark.django_db
def test_a_registered_sections_errors_block_every_section(widgets_section):
    def change(document):
        document["deal_stages"].append({"key": "pilot", "name": "Pilot", "win_probability": 40})
        document["widgets"].append({"key": "dial", "stage": "nowhere"})

    with pytest.raises(ConfigInvalid) as raised:
        config_import(edited(config_export(), change))

    assert [str(error) for error in raised.value.errors] == [
        "widgets[dial].stage: no such lifecycle stage"
    ]
    assert widgets_section == []
    assert not DealStage.objects.filter(key="pilot").exists()


def test_a_section_name_cannot_be_taken_twice():
    section = ConfigSection("deal_stages", 1, ("key",), list, lambda i, d: [], SectionSummary)

    with pytest.raises(Exception, match="already registered"):
        register_section(section)


# --- The commands ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_commands_round_trip_through_a_file(tmp_path, capsys):
    path = tmp_path / "nextstep.yaml"
    call_command("export_config", str(path))
    exported = path.read_text(encoding="utf-8")
    empty_the_database()

    call_command("import_config", str(path))

    out = capsys.readouterr().out
    assert "deal_stages: 6 created, 0 updated, 0 unchanged" in out
    assert f"Imported {path}." in out
    call_command("export_config")
    assert capsys.readouterr().out == exported


@pytest.mark.django_db
def test_import_command_lists_every_error_and_changes_nothing(tmp_path):
    path = tmp_path / "nextstep.yaml"
    before = config_export()
    path.write_text(edited(before, lambda d: (bad_probability(d), unknown_outcome(d))))

    with pytest.raises(CommandError) as raised:
        call_command("import_config", str(path))

    assert str(raised.value).splitlines() == [
        f"{path} is invalid; nothing was changed.",
        "  deal_stages[proposal].win_probability: Ensure this value is less than or equal to 100.",
        "  deal_stages[proposal].outcome: Value 'maybe' is not a valid choice.",
    ]
    assert config_export() == before


@pytest.mark.django_db
def test_import_command_dry_run_reports_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "nextstep.yaml"
    path.write_text(edited(config_export(), lambda d: d["deal_stages"].pop()))

    call_command("import_config", str(path), "--dry-run")

    out = capsys.readouterr().out
    assert "deal_stages: 0 created, 0 updated, 5 unchanged\n  not in file, kept: lost" in out
    assert "Dry run: nothing was written." in out
