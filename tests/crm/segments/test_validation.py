"""Definitions are checked before they are saved, with messages a marketer can act on."""

import pytest
from django.core.exceptions import ValidationError

from crm.models import Segment
from crm.segments.validation import References, definition_problems, segment_cycle
from crm.services.segments import segment_create, segment_delete, segment_update
from tests.crm.segments.conftest import cond, group
from tests.factories import ConsentTopicFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def problems(definition, segment_key: str = "") -> list[str]:
    references = References.load()
    return [
        str(problem)
        for problem in definition_problems(
            definition, references=references, segment_key=segment_key
        )
    ]


def test_a_sound_definition_has_no_problems():
    ConsentTopicFactory(key="newsletter")
    definition = group(
        cond("lifecycle_stage", "in", ["engaged_lead"]),
        group(
            cond("lead_score", "between", [10, 50]),
            cond("consent", "granted", topic="newsletter"),
            cond(
                "activity",
                "at_least",
                kind="page_viewed",
                count=2,
                days=7,
                where=[{"key": "path", "operator": "contains", "value": "/pricing"}],
            ),
            match="any",
        ),
    )

    assert problems(definition) == []


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], "The segment must be a group of conditions."),
        (group(), "The segment is empty: add a condition or remove the group."),
        (group(group(match="any")), "Group 1 is empty: add a condition or remove the group."),
        (
            {"match": "some", "conditions": [cond("suppressed", "is")]},
            "must match all, any or none",
        ),
        (group({"field": ""}), "Condition 1: choose what to filter on."),
        (
            group(cond("lifecycle_stage", "is")),
            "Condition 1: Lifecycle stage: choose how to compare.",
        ),
        (
            group(cond("lifecycle_stage", "in", [])),
            "Condition 1: Lifecycle stage: choose at least one lifecycle stage.",
        ),
        (
            group(cond("lifecycle_stage", "in", ["prospect"])),
            "Condition 1: Lifecycle stage: there is no lifecycle stage 'prospect'.",
        ),
        (
            group(cond("lead_score", "gte", "ten")),
            "Condition 1: Lead score (total): enter a number.",
        ),
        (
            group(cond("lead_score", "between", [50, 10])),
            "the lowest number must not be above the highest.",
        ),
        (group(cond("created_at", "before", "31/01/2026")), "enter a date as YYYY-MM-DD."),
        (group(cond("created_at", "in_last_days", 0)), "enter a number of days from 1 to 3660."),
        (group(cond("country", "in", ["germany"])), "use two-letter country codes in capitals"),
        (group(cond("property", "equals", "x", key="")), "enter the property's name."),
        (group(cond("property", "equals", "x", key="a b")), "is not a property name"),
        (group(cond("consent", "granted", topic="nope")), "there is no consent topic 'nope'."),
        (
            group(cond("activity", "at_least", kind="Page Viewed", count=1)),
            "is not an activity name such as page_viewed.",
        ),
        (
            group(cond("activity", "at_least", kind="segment_entered", count=1)),
            "use a Segment condition instead of segment activities.",
        ),
        (
            group(cond("activity", "at_least", kind="page_viewed", count=0)),
            "enter how many times, a whole number from 1 to 1000.",
        ),
        (
            group(
                cond(
                    "activity",
                    "none",
                    kind="page_viewed",
                    where=[{"key": "path", "operator": "contains"}],
                )
            ),
            "property condition 1: enter a value.",
        ),
        (
            group(cond("segment", "in", "ghost")),
            "Condition 1: Segment: there is no segment 'ghost'.",
        ),
        (group(cond("suppressed", "is", colour="red")), "unknown setting 'colour'."),
        (group(cond("open_deal", "in_stage", ["won"])), "there is no open deal stage 'won'."),
    ],
)
def test_problems_are_explained(definition, message):
    found = problems(definition)

    assert any(message in text for text in found), found


def test_positions_number_nested_conditions_like_an_outline():
    definition = group(
        cond("suppressed", "is"),
        group(cond("suppressed", "is"), cond("lead_score", "gte", None), match="any"),
    )

    assert problems(definition) == ["Condition 2.2: Lead score (total): enter a number."]


def test_groups_nest_at_most_five_deep():
    definition = group(cond("suppressed", "is"))
    for _level in range(5):
        definition = group(definition)

    assert "Groups can be nested at most 5 deep." in " ".join(problems(definition))


def test_a_segment_cannot_contain_itself():
    SegmentFactory(key="loop", definition=group(cond("suppressed", "is")))

    found = problems(group(cond("segment", "in", "loop")), segment_key="loop")

    assert found == ["Segment loop cannot contain itself."]


def test_a_circle_between_segments_is_named():
    SegmentFactory(key="a", definition=group(cond("segment", "in", "b")))
    SegmentFactory(key="b", definition=group(cond("suppressed", "is")))
    b = Segment.objects.get(key="b")

    with pytest.raises(ValidationError) as refused:
        segment_update(segment=b, definition=group(cond("segment", "not_in", "a")))

    assert refused.value.message_dict["definition"] == [
        "Segments cannot contain each other in a circle: b → a → b."
    ]


def test_segment_cycle_finds_long_chains():
    definitions = {
        "a": group(cond("segment", "in", "b")),
        "b": group(cond("segment", "in", "c")),
        "c": group(cond("suppressed", "is")),
    }

    assert segment_cycle("c", group(cond("segment", "in", "a")), definitions) == [
        "c",
        "a",
        "b",
        "c",
    ]
    assert segment_cycle("c", group(cond("suppressed", "is")), definitions) == []


def test_creating_an_invalid_segment_saves_nothing():
    with pytest.raises(ValidationError, match="choose at least one lifecycle stage"):
        segment_create(key="bad", name="Bad", definition=group(cond("lifecycle_stage", "in", [])))

    assert not Segment.objects.filter(key="bad").exists()


def test_a_segment_used_by_another_cannot_be_deleted():
    used = SegmentFactory(key="leads", name="Leads")
    SegmentFactory(key="hot", name="Hot leads", definition=group(cond("segment", "in", "leads")))

    with pytest.raises(ValidationError, match=r"Leads is used by other segments \(Hot leads\)"):
        segment_delete(segment=used)

    assert Segment.objects.filter(key="leads").exists()


def test_the_key_cannot_be_changed_by_an_update():
    segment = SegmentFactory(key="leads")

    with pytest.raises(TypeError, match="cannot change: key"):
        segment_update(segment=segment, key="other")
