"""scoring's wiring: the receiver, its registered schedules, the fit refresh task."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Contact
from crm.schedules import registered_schedules
from crm.services import contact_update
from crm.signals import activities_recorded
from scoring import tasks as scoring_tasks
from scoring.tasks import refresh_fit_scores_task
from tests.factories import CompanyFactory, ContactFactory
from tests.scoring.conftest import fit_rule, score_of


def test_the_receiver_is_connected_once():
    receivers = [
        receiver
        for receiver in activities_recorded.receivers
        if receiver[0][0] == "scoring.score_recorded_activities"
    ]

    assert len(receivers) == 1


def test_scoring_registers_decay_sla_and_fit_schedules():
    schedules = {spec.name: spec for spec in registered_schedules()}

    assert schedules["scoring: apply score decay"].func == "scoring.tasks.apply_score_decay_task"
    assert schedules["scoring: check handoff SLAs"].minutes == 1
    assert schedules["scoring: refresh fit scores"].func == "scoring.tasks.refresh_fit_scores_task"


@pytest.mark.django_db
def test_the_fit_refresh_picks_up_recently_edited_contacts():
    fit_rule("title", 20, [("job_title", "contains", "director")])
    person = ContactFactory(job_title="Intern")
    contact_update(contact=person, job_title="Sales Director")

    outcome = refresh_fit_scores_task()

    assert outcome == "1 checked, 1 contacts' fit changed"
    assert score_of(person) == 20


@pytest.mark.django_db
def test_the_fit_refresh_picks_up_contacts_of_recently_edited_companies():
    fit_rule("fintech", 30, [("company.industry", "equals", "Fintech")])
    company = CompanyFactory(industry="Retail")
    people = ContactFactory.create_batch(2, company=company)
    ContactFactory.create_batch(3)
    Contact.objects.update(updated_at=timezone.now() - datetime.timedelta(days=1))
    company.industry = "Fintech"
    company.save()

    outcome = refresh_fit_scores_task()

    assert outcome == "2 checked, 2 contacts' fit changed"
    assert [score_of(person) for person in people] == [30, 30]


@pytest.mark.django_db
def test_the_fit_refresh_reads_contacts_without_an_or_across_the_company_join(
    django_assert_max_num_queries,
):
    # Issue #10: `updated_at >= t OR company.updated_at >= t` read all 1M contacts.
    fit_rule("title", 20, [("job_title", "contains", "director")])
    ContactFactory.create_batch(3)

    with CaptureQueriesContext(connection) as queries:
        refresh_fit_scores_task()

    contact_reads = [q["sql"] for q in queries.captured_queries if 'FROM "crm_contact"' in q["sql"]]
    assert contact_reads
    assert not [sql for sql in contact_reads if " OR " in sql and "crm_company" in sql]


@pytest.mark.django_db
def test_the_fit_refresh_does_nothing_without_fit_rules(django_assert_num_queries):
    ContactFactory.create_batch(3)

    with django_assert_num_queries(1):  # the rule book
        outcome = refresh_fit_scores_task()

    assert outcome == "0 checked, 0 contacts' fit changed"


@pytest.mark.django_db
def test_refreshing_every_fit_score_fans_out_one_task_per_contact_range(monkeypatch):
    monkeypatch.setattr(scoring_tasks, "FIT_RANGE_CONTACTS", 2)
    fit_rule("title", 20, [("job_title", "contains", "director")])
    people = ContactFactory.create_batch(5, job_title="Director")

    outcome = scoring_tasks.refresh_all_fit_scores_task()

    assert outcome == "queued 3 fit refresh ranges"
    assert {score_of(person) for person in people} == {20}
