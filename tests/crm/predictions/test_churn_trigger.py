"""The sequence trigger "churn risk rose above X", fed by the predictions refit."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from crm.predictions import services
from crm.predictions.models import ContactPrediction
from sequences.models import Enrollment, Trigger
from sequences.services.matching import _churn_risk_rose_above
from sequences.services.sequences import sequence_activate
from tests.sequences.conftest import build_sequence, step

from .conftest import NOW


def _win_back(percent: int):
    sequence = build_sequence(
        [step("pause", "wait", days=1)], trigger=None, activate=False, key=f"win-back-{percent}"
    )
    Trigger.objects.create(
        sequence=sequence, type=Trigger.Type.CHURN_RISK_ROSE, churn_risk_above=percent
    )
    sequence_activate(sequence=sequence)
    return sequence


def test_customers_whose_risk_rose_through_the_threshold_enter_exactly_once(customers):
    services.predictions_refit(now=NOW)
    before = dict(ContactPrediction.objects.values_list("contact_id", "churn_risk"))
    sequence = _win_back(50)
    later = NOW + datetime.timedelta(days=120)

    services.predictions_refit(now=later)
    services.predictions_refit(now=later)  # a re-run changes nothing: nobody rises again

    after = dict(ContactPrediction.objects.values_list("contact_id", "churn_risk"))
    crossed = {pk for pk in before if round(before[pk] * 100) < 50 <= round(after[pk] * 100)}
    enrollments = Enrollment.objects.filter(sequence=sequence)
    assert crossed
    assert set(enrollments.values_list("contact_id", flat=True)) == crossed
    assert enrollments.count() == len(crossed)


@pytest.mark.parametrize(
    ("previous", "current", "fires"),
    [(45, 55, True), (50, 55, False), (40, 50, True), (60, 70, False), (30, 45, False)],
)
def test_the_trigger_fires_only_when_the_risk_rises_through_its_percentage(
    previous, current, fires
):
    properties = {"previous": previous, "churn_risk": current}
    assert _churn_risk_rose_above(50, "churn_risk_rose", properties) is fires


@pytest.mark.parametrize("percent", [None, 0, 72, 100])
def test_the_percentage_must_be_a_step_the_refit_records(db, percent):
    trigger = Trigger(type=Trigger.Type.CHURN_RISK_ROSE, churn_risk_above=percent)

    with pytest.raises(ValidationError, match="steps of 5"):
        trigger.clean()
