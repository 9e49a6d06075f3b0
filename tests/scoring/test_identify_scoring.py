"""A visitor's anonymous history is scored when identify gives it to a contact."""

import pytest

from crm.models import Task
from crm.services import ActivityInput, activity_record_batch, contact_identify
from scoring.models import ScoreChange
from tests.scoring.conftest import engagement_rule, score_of

pytestmark = pytest.mark.django_db


def browse_anonymously(anonymous_id: str, *paths: str, kind: str = "page_viewed") -> None:
    activity_record_batch(
        items=[
            ActivityInput(
                kind=kind, source="test", anonymous_id=anonymous_id, properties={"path": path}
            )
            for path in paths
        ]
    )


def test_identify_scores_anonymous_pricing_views_once():
    engagement_rule("pricing", points=10, conditions=[("path", "contains", "/pricing")])
    browse_anonymously("visitor-1", "/pricing", "/pricing/teams", "/blog")

    identified = contact_identify(email="ada@example.com", anonymous_id="visitor-1", source="test")
    contact = identified.contact
    score_after_first_identify = score_of(contact)
    contact_identify(email="ada@example.com", anonymous_id="visitor-1", source="test")

    assert score_after_first_identify == 20
    assert score_of(contact) == 20
    assert ScoreChange.objects.filter(contact=contact).count() == 2


def test_nothing_is_scored_while_the_visitor_is_anonymous():
    engagement_rule("pricing", points=10, conditions=[("path", "contains", "/pricing")])

    browse_anonymously("visitor-2", "/pricing")

    assert not ScoreChange.objects.exists()


def test_an_anonymous_demo_request_gets_its_task_on_identify(seller):
    browse_anonymously("visitor-3", "/demo", kind="demo_requested")

    result = contact_identify(email="grace@example.com", anonymous_id="visitor-3", source="test")

    task = Task.objects.get()
    assert (task.contact, task.owner) == (result.contact, seller)
