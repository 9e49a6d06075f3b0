"""Findability: a favicon instead of a 404, and a segment that says it is being evaluated."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Segment
from tests.crm.segments.conftest import cond, group
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def test_favicon_is_answered_not_a_404(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"].endswith("crm/favicon.ico")


def test_admin_pages_declare_the_icon(client, marketer):
    client.force_login(marketer)

    body = client.get(reverse("admin:index")).content.decode()

    assert 'rel="icon" href="/static/crm/favicon.svg"' in body


def test_a_just_saved_segment_says_evaluating_not_zero_members(client, marketer):
    client.force_login(marketer)
    definition = json.dumps(group(cond("lifecycle_stage", "in", ["new_lead"])))

    response = client.post(
        reverse("admin:crm_segment_add"),
        {
            "name": "Germany",
            "key": "germany",
            "definition": definition,
            "owner": "",
            "description": "",
            "_continue": "1",
        },
        follow=True,
    )

    body = response.content.decode()
    segment = Segment.objects.get(key="germany")
    assert "Evaluating…" in body
    assert "0 members" not in body
    assert reverse("admin:crm_segment_status", args=[segment.pk]) in body
    assert "crm/segment_status.js" in body


def test_the_status_reports_the_count_once_evaluated(client, marketer):
    segment = SegmentFactory(member_count=3, last_evaluated_at=timezone.now())
    client.force_login(marketer)

    status = client.get(reverse("admin:crm_segment_status", args=[segment.pk])).json()
    page = client.get(reverse("admin:crm_segment_change", args=[segment.pk])).content.decode()

    assert status["member_count"] == 3
    assert status["last_evaluated_at"] == segment.last_evaluated_at.isoformat()
    assert "3 members" in page and "Evaluating…" not in page
