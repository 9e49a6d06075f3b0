"""Segments in export_config / import_config: by key, references by key, validated first."""

import pytest
import yaml

from crm.config_io import ConfigInvalid, config_export, config_import
from crm.models import Segment
from tests.crm.segments.conftest import cond, group
from tests.factories import SegmentFactory, UserFactory

pytestmark = pytest.mark.django_db

LEADS = group(cond("lifecycle_stage", "in", ["new_lead"]))
HOT_LEADS = group(cond("segment", "in", "leads"), cond("lead_score", "gte", 50))


def _file(*segments) -> str:
    return yaml.safe_dump({"version": 1, "segments": list(segments)}, sort_keys=False)


def _item(key: str, definition: dict, **fields) -> dict:
    return {
        "key": key,
        "name": key.title(),
        "description": "",
        "owner": "",
        "definition": definition,
        **fields,
    }


def test_export_then_import_into_an_empty_database_gives_the_same_file():
    UserFactory(username="mara")
    config_import(_file(_item("hot", HOT_LEADS, owner="mara"), _item("leads", LEADS)))
    exported = config_export()
    Segment.objects.all().delete()

    report = config_import(exported)

    assert report.sections["segments"].created == ("hot", "leads")
    assert config_export() == exported
    assert Segment.objects.get(key="hot").owner.username == "mara"


def test_a_segment_may_name_one_listed_after_it():
    config_import(_file(_item("hot", HOT_LEADS), _item("leads", LEADS)))

    assert set(Segment.objects.values_list("key", flat=True)) == {"hot", "leads"}


def test_importing_twice_changes_nothing():
    text = _file(_item("leads", LEADS))
    config_import(text)

    report = config_import(text)

    assert report.sections["segments"].unchanged == ("leads",)


def test_a_changed_definition_is_an_update():
    SegmentFactory(key="leads", name="Leads", definition=LEADS)
    changed = group(cond("lifecycle_stage", "in", ["engaged_lead"]))

    report = config_import(_file(_item("leads", changed)))

    assert report.sections["segments"].updated == ("leads",)
    assert Segment.objects.get(key="leads").definition == changed


def test_a_circle_in_the_file_is_refused_and_nothing_is_written():
    a = _item("a", group(cond("segment", "in", "b")))
    b = _item("b", group(cond("segment", "in", "a")))

    with pytest.raises(ConfigInvalid) as refused:
        config_import(_file(a, b))

    messages = [str(error) for error in refused.value.errors]
    assert "segments[a].definition: Segments cannot contain each other in a circle: a → b → a." in (
        messages
    )
    assert not Segment.objects.exists()


def test_problems_name_the_condition_and_unknown_owners():
    bad = _item("bad", group(cond("lead_score", "gte", "lots")), owner="ghost")

    with pytest.raises(ConfigInvalid) as refused:
        config_import(_file(bad))

    assert [str(error) for error in refused.value.errors] == [
        "segments[bad].owner: no user 'ghost'",
        "segments[bad].definition[1]: Lead score (total): enter a number.",
    ]
