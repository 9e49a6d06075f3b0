"""scoring's wiring: the receiver, its registered schedules, the fit refresh task."""

import pytest

from crm.schedules import registered_schedules
from crm.services import contact_update
from crm.signals import activities_recorded
from scoring.tasks import refresh_fit_scores_task
from tests.factories import ContactFactory
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

    assert outcome == "1 contacts' fit changed"
    assert score_of(person) == 20
