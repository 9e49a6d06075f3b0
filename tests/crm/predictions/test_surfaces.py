"""Where predictions show: the contact page, the calibration page, segments, the API."""

import pytest
from django.urls import reverse

from crm.models import ApiKey
from crm.predictions import services
from crm.predictions.models import ContactPrediction, PredictionRun
from crm.segment_selectors import segment_contacts
from crm.services.api_keys import api_key_create
from tests.crm.api.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory

from .conftest import NOW


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


def test_contact_page_shows_the_prediction_and_its_inputs(customers, staff_client):
    services.predictions_refit(now=NOW)
    prediction = ContactPrediction.objects.filter(reason="").first()

    page = staff_client.get(
        reverse("admin:crm_contact_change", args=[prediction.contact_id]), secure=True
    )

    text = page.content.decode()
    assert "Purchase predictions" in text
    assert f"<strong>{prediction.churn_risk_percent}%</strong>" in text
    assert f"{prediction.orders} order day" in text
    assert "How accurate is it?" in text


def test_contact_page_says_why_there_is_no_number(staff_client, db):
    contact = ContactFactory()
    ActivityFactory(contact=contact, kind="order_placed", occurred_at=NOW, properties={"total": 5})
    services.predictions_refit(now=NOW)

    page = staff_client.get(reverse("admin:crm_contact_change", args=[contact.pk]), secure=True)

    text = page.content.decode()
    assert "predictions need 100" in text
    assert "Churn risk" not in text


def test_calibration_page_draws_predicted_against_actual_with_a_table_and_csv(
    customers, staff_client
):
    run = services.calibration_run(holdout_days=90, now=NOW)
    url = reverse("admin:predictions_predictionrun_calibration")

    page = staff_client.get(url, secure=True)
    csv = staff_client.get(url, {"csv": "calibration"}, secure=True)

    text = page.content.decode()
    assert "<svg" in text and 'id="nschart-calibration"' in text
    assert f"{run.results['total_error_percent']:.1f}%" in text
    rows = b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    assert rows[0] == "Repeat orders before the cut-off,Predicted,Actual"
    assert len(rows) == 1 + len(run.results["groups"])


def test_calibration_page_queues_a_check(
    customers, staff_client, django_capture_on_commit_callbacks
):
    url = reverse("admin:predictions_predictionrun_calibration")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, secure=True)

    assert response.status_code == 302
    # Tests run django-q2 synchronously: the queued check has run.
    assert PredictionRun.objects.filter(kind=PredictionRun.Kind.CALIBRATION).count() == 1


def test_segments_select_by_churn_risk_and_top_predicted_value(customers):
    services.predictions_refit(now=NOW)
    risky = {
        "match": "all",
        "conditions": [{"field": "churn_risk", "operator": "gte", "value": 70}],
    }
    top = {"match": "all", "conditions": [
        {"field": "predicted_value", "operator": "top_percent", "value": 10}]}  # fmt: skip

    risky_ids = set(segment_contacts(definition=risky).values_list("pk", flat=True))
    top_ids = set(segment_contacts(definition=top).values_list("pk", flat=True))

    expected_risky = set(
        ContactPrediction.objects.filter(churn_risk__gte=0.7).values_list("contact_id", flat=True)
    )
    assert risky_ids == expected_risky and risky_ids
    values = sorted(
        ContactPrediction.objects.exclude(predicted_value_12m=None).values_list(
            "predicted_value_12m", flat=True
        )
    )
    assert len(top_ids) == len(values) // 10
    lowest_top = min(
        ContactPrediction.objects.filter(contact_id__in=top_ids).values_list(
            "predicted_value_12m", flat=True
        )
    )
    assert lowest_top >= values[-len(top_ids)]


def test_api_contact_detail_carries_the_prediction(customers):
    services.predictions_refit(now=NOW)
    key = api_key_create(name="Shop backend", kind=ApiKey.Kind.SERVER)
    api = client_for(key.key)
    with_orders = customers[0]
    without = ContactFactory()

    detail = api.get(f"/api/v1/contacts/{with_orders.pk}/", secure=True).json()
    empty = api.get(f"/api/v1/contacts/{without.pk}/", secure=True).json()

    prediction = ContactPrediction.objects.get(contact=with_orders)
    assert detail["prediction"]["churn_risk"] == pytest.approx(prediction.churn_risk)
    assert detail["prediction"]["status"] == "ok"
    assert detail["prediction"]["orders"] == prediction.orders
    assert empty["prediction"] is None
