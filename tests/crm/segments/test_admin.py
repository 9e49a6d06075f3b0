"""The segment admin: saving through the builder's JSON, preview, export and the contact filter."""

import csv
import io
import json

import pytest
from django.urls import reverse

from crm.models import Segment
from crm.services import consent_grant
from crm.services.segments import segment_evaluate
from tests.crm.segments.conftest import cond, group
from tests.factories import (
    ConsentTopicFactory,
    ContactFactory,
    SegmentCountSnapshotFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db

LEADS = group(cond("lifecycle_stage", "in", ["new_lead"]))


def _form(definition, **fields) -> dict:
    return {
        "name": "Leads",
        "key": "leads",
        "description": "",
        "owner": "",
        "definition": json.dumps(definition),
        **fields,
    }


def _preview(client, definition, **extra):
    return client.post(
        reverse("admin:crm_segment_preview"),
        data=json.dumps({"definition": definition, **extra}),
        content_type="application/json",
    )


def test_a_marketer_saves_a_segment_and_it_is_evaluated(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    ContactFactory(lifecycle_stage_id="new_lead")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:crm_segment_add"), _form(LEADS))

    assert response.status_code == 302
    segment = Segment.objects.get(key="leads")
    assert segment.definition == LEADS
    assert segment.member_count == 1


def test_an_invalid_tree_is_refused_with_readable_messages(client, marketer):
    client.force_login(marketer)
    definition = group(cond("lifecycle_stage", "in", []), group(match="any"))

    response = client.post(reverse("admin:crm_segment_add"), _form(definition))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["definition"]
    assert errors == [
        "Condition 1: Lifecycle stage: choose at least one lifecycle stage.",
        "Group 2 is empty: add a condition or remove the group.",
    ]
    assert not Segment.objects.exists()


def test_json_that_does_not_parse_is_refused(client, marketer):
    client.force_login(marketer)

    response = client.post(reverse("admin:crm_segment_add"), {**_form(LEADS), "definition": "{"})

    assert "Enter a valid JSON." in response.context["adminform"].form.errors["definition"]


def test_the_key_cannot_change_once_saved(client, marketer):
    client.force_login(marketer)
    segment = SegmentFactory(key="leads", definition=LEADS)

    client.post(
        reverse("admin:crm_segment_change", args=[segment.pk]),
        _form(LEADS, key="renamed", name="Renamed"),
    )

    segment.refresh_from_db()
    assert (segment.key, segment.name) == ("leads", "Renamed")


def test_the_builder_page_carries_the_catalog_and_options(client, marketer):
    client.force_login(marketer)

    response = client.get(reverse("admin:crm_segment_add"))

    content = response.content.decode()
    assert 'id="segment-builder-config"' in content
    assert "crm/segment_builder.js" in content
    assert '"lifecycle_stages"' in content


def test_preview_counts_samples_and_times_the_query(client, marketer):
    client.force_login(marketer)
    for _ in range(25):
        ContactFactory(lifecycle_stage_id="new_lead")

    data = _preview(client, LEADS).json()

    assert data["problems"] == []
    assert data["count"] == 25
    assert len(data["sample"]) == 20
    assert data["milliseconds"] >= 0
    assert data["sendable_count"] is None


def test_preview_shows_the_sendable_count_for_a_topic(client, marketer):
    client.force_login(marketer)
    topic = ConsentTopicFactory(key="newsletter", name="Newsletter")
    consented, suppressed, _silent = (ContactFactory(lifecycle_stage_id="new_lead") for _ in "abc")
    for contact in (consented, suppressed):
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    SuppressionFactory(email=suppressed.email)

    data = _preview(client, LEADS, topic="newsletter").json()

    assert (data["count"], data["sendable_count"], data["topic"]) == (3, 1, "Newsletter")


def test_preview_explains_problems_by_position(client, marketer):
    client.force_login(marketer)

    data = _preview(client, group(cond("suppressed", "is"), cond("lead_score", "gte"))).json()

    assert data["problems"] == [
        {
            "position": "2",
            "message": "Lead score (total): enter a number.",
            "text": "Condition 2: Lead score (total): enter a number.",
        }
    ]


def test_preview_needs_a_post(client, marketer):
    client.force_login(marketer)

    assert client.get(reverse("admin:crm_segment_preview")).status_code == 405


def test_the_change_page_shows_count_history_and_last_evaluation(client, marketer):
    client.force_login(marketer)
    segment = SegmentFactory(key="leads", definition=LEADS)
    segment_evaluate(segment=segment)
    SegmentCountSnapshotFactory(segment=segment, member_count=4242)

    response = client.get(reverse("admin:crm_segment_change", args=[segment.pk]))

    content = response.content.decode()
    assert "4242" in content
    assert "last fully evaluated:" in content
    assert f"?segment={segment.key}" in content


def test_members_export_as_csv_with_formulas_escaped(client, marketer):
    client.force_login(marketer)
    segment = SegmentFactory(key="leads")
    SegmentMembershipFactory(
        segment=segment, contact=ContactFactory(email="eve@example.com", first_name="=HYPERLINK(1)")
    )
    SegmentMembershipFactory(segment=segment, exited_at="2026-01-01T00:00:00Z")

    response = client.get(reverse("admin:crm_segment_export", args=[segment.pk]))

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["email", "first_name", "last_name"]
    assert [row[:2] for row in rows[1:]] == [["eve@example.com", "'=HYPERLINK(1)"]]


def test_the_contact_list_filters_by_segment(client, marketer):
    client.force_login(marketer)
    segment = SegmentFactory(key="leads")
    member = ContactFactory(email="member@example.com")
    SegmentMembershipFactory(segment=segment, contact=member)
    ContactFactory(email="outsider@example.com")

    response = client.get(reverse("admin:crm_contact_changelist"), {"segment": "leads"})

    shown = [contact.email for contact in response.context["cl"].result_list]
    assert shown == ["member@example.com"]


def test_the_contact_page_lists_the_contacts_segments(client, marketer):
    client.force_login(marketer)
    member = ContactFactory()
    SegmentMembershipFactory(segment=SegmentFactory(name="Hot leads"), contact=member)

    response = client.get(reverse("admin:crm_contact_change", args=[member.pk]))

    assert "Hot leads" in response.content.decode()


def test_deleting_a_segment_another_uses_is_blocked(client, marketer):
    client.force_login(marketer)
    used = SegmentFactory(key="leads", name="Leads")
    SegmentFactory(key="hot", name="Hot", definition=group(cond("segment", "in", "leads")))

    response = client.post(reverse("admin:crm_segment_delete", args=[used.pk]), {"post": "yes"})

    assert response.status_code == 200
    assert "Segment Hot (hot) uses Leads" in response.content.decode()
    assert Segment.objects.filter(pk=used.pk).exists()


def test_sales_can_view_and_preview_but_not_build(client, salesperson):
    client.force_login(salesperson)
    segment = SegmentFactory()

    assert client.get(reverse("admin:crm_segment_change", args=[segment.pk])).status_code == 200
    assert client.get(reverse("admin:crm_segment_add")).status_code == 403
    assert _preview(client, LEADS).status_code == 200
