"""Issue #13's periodic tasks are written by setup_schedules and each can be imported."""

import io

import pytest
from django.core.management import call_command
from django.utils.module_loading import import_string
from django_q.models import Schedule

EXPECTED = {
    "predictions: refit purchase predictions": "crm.predictions.tasks.refit_predictions_task",
    "predictions: calibration check": "crm.predictions.tasks.calibrate_predictions_task",
    "predictions: missed milestones": "crm.predictions.tasks.check_milestones_task",
    "predictions: best send times": "crm.predictions.tasks.refresh_send_times_task",
    "scoring: rising intent": "scoring.tasks.refresh_rising_intent_task",
}


@pytest.mark.django_db
def test_setup_schedules_writes_every_prediction_task():
    call_command("setup_schedules", stdout=io.StringIO())

    written = dict(Schedule.objects.filter(name__in=EXPECTED).values_list("name", "func"))

    assert written == EXPECTED
    for func in written.values():
        assert callable(import_string(func))
