"""The revenue view's API (server keys, ?since=&until=) and admin pages (charts, tables, CSV)."""

import datetime

import pytest

from crm.models import ApiKey
from crm.services import api_key_create
from tests.crm.api.conftest import client_for
from tests.factories import UserFactory
from tests.sequences.reports.conftest import esp

pytestmark = pytest.mark.django_db


@pytest.fixture
def server_client(db):
    return client_for(api_key_create(name="BI", kind=ApiKey.Kind.SERVER).key)


@pytest.fixture
def results(mailed, record, clock):
    """The welcome sequence: one email sent and clicked, then an 80 EUR order."""
    sequence, contact, message = mailed
    esp(record, contact, "email_clicked", message)
    record(contact, "order_placed", order_id="A1", total="80.00", currency="EUR")
    return sequence


def test_api_lists_every_sequence_with_its_figures(server_client, results):
    response = server_client.get("/api/v1/reports/sequences/")

    assert response.status_code == 200
    [line] = response.json()["results"]
    assert line["key"] == "welcome" and line["sent"] == 1 and line["clicked"] == 1
    assert line["attributed_revenue"] == 80.0
    assert line["holdout"]["lift"]["status"] == "no holdout data yet"


def test_api_gives_one_sequences_funnel_attribution_and_holdout(server_client, results):
    response = server_client.get("/api/v1/reports/sequences/welcome/")

    body = response.json()
    assert response.status_code == 200
    assert [stage["stage"] for stage in body["funnel"]] == [
        "enrolled",
        "sent",
        "delivered",
        "opened",
        "machine_opened",
        "clicked",
        "converted",
        "revenue",
    ]
    assert body["attribution"]["touch"]["conversions"] == 1
    assert body["steps"][0]["attributed_revenue"] == 80.0
    assert body["holdout"]["mailed"]["revenue"] == 80.0


def test_api_period_filters_by_day(server_client, results, clock):
    tomorrow = (clock.now + datetime.timedelta(days=1)).date().isoformat()

    response = server_client.get("/api/v1/reports/sequences/welcome/", {"since": tomorrow})

    assert response.status_code == 200
    assert response.json()["attribution"]["touch"]["conversions"] == 0


@pytest.mark.parametrize("query", [{"since": "yesterday"}, {"until": "2026-02-30"}])
def test_api_refuses_a_bad_period_with_a_400(server_client, results, query):
    response = server_client.get("/api/v1/reports/sequences/welcome/", query)

    assert response.status_code == 400
    assert response.json()["error"]


def test_api_period_ending_before_it_starts_is_empty(server_client, results):
    query = {"since": "2026-03-10", "until": "2026-03-01"}

    response = server_client.get("/api/v1/reports/sequences/welcome/", query)

    assert response.status_code == 200
    assert response.json()["holdout"]["mailed"]["contacts"] == 0


def test_api_answers_404_for_an_unknown_sequence(server_client, db):
    assert server_client.get("/api/v1/reports/sequences/nope/").status_code == 404


def test_api_needs_a_server_key(client, results):
    assert client.get("/api/v1/reports/sequences/").status_code == 401


@pytest.mark.parametrize("role", ["Marketing", "Sales", "Customer success"])
def test_every_role_opens_a_sequences_results_with_charts_and_tables(client, results, role):
    client.force_login(UserFactory(groups=[role]))

    response = client.get(f"/admin/revenue/sequenceresult/{results.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "<table" in html
    assert "Attribution, two ways" in html and "Holdout" in html


def test_results_export_each_table_as_csv(client, superuser, results):
    client.force_login(superuser)

    response = client.get(
        f"/admin/revenue/sequenceresult/{results.pk}/change/", {"csv": "steps-table"}
    )

    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert body.splitlines()[1].startswith("hello,1,")


def test_overview_lists_sequences_and_the_cross_sequence_reports(client, superuser, results):
    client.force_login(superuser)

    response = client.get("/admin/revenue/sequenceresult/")

    html = response.content.decode()
    assert response.status_code == 200
    for title in ("Revenue per day", "Which segments convert faster", "repeat purchases"):
        assert title in html
    assert f"/admin/revenue/sequenceresult/{results.pk}/change/" in html


def test_results_page_reads_a_fixed_number_of_queries(
    client, superuser, results, django_assert_max_num_queries
):
    client.force_login(superuser)
    client.get(f"/admin/revenue/sequenceresult/{results.pk}/change/")

    with django_assert_max_num_queries(20):
        client.get(f"/admin/revenue/sequenceresult/{results.pk}/change/")


def test_reports_dashboard_shows_the_revenue_panels(client, superuser, results):
    client.force_login(superuser)

    response = client.get("/admin/reports/dashboard/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="panel-revenue-per-day"' in html and 'id="panel-sequence-revenue-results"' in html


def test_every_report_page_reads_as_many_queries_whatever_the_data(
    client, superuser, server_client, results, clock
):
    """Query counts do not grow with sequences, days or months of counters (issue #11,
    item 7): every page reads aggregates with a fixed number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sequences.reports.counts import Key, Tally, report_counts_add
    from tests.factories import SegmentMembershipFactory
    from tests.sequences.conftest import build_sequence, email_step

    segment = SegmentMembershipFactory(contact_id=results.enrollments.first().contact_id).segment
    client.force_login(superuser)
    admin_pages = [
        "/admin/revenue/sequenceresult/?days=365",
        f"/admin/revenue/sequenceresult/{results.pk}/change/?days=365",
        f"/admin/revenue/sequenceresult/{results.pk}/change/?segment={segment.pk}",
        "/admin/reports/dashboard/?days=90",
    ]
    api_pages = ["/api/v1/reports/sequences/", f"/api/v1/reports/sequences/{results.key}/"]

    def counts() -> list[int]:
        found = []
        for pages, user_client in ((admin_pages, client), (api_pages, server_client)):
            for url in pages:
                user_client.get(url)  # warm: caches and lazy imports
                with CaptureQueriesContext(connection) as queries:
                    assert user_client.get(url).status_code == 200
                found.append(len(queries))
        return found

    before = counts()
    # Much more data: five more sequences with a year of daily counters on every step.
    tally = Tally()
    for number in range(5):
        other = build_sequence([email_step("a"), email_step("b")], key=f"more-{number}")
        for back in range(365):
            day = clock.now.date() - datetime.timedelta(days=back)
            for step in ("", "a", "b"):
                for metric in ("sent", "delivered", "clicked", "attributed"):
                    tally.add(Key(day=day, metric=metric, sequence_pk=other.pk, step=step), 3, 5)
            tally.add(Key(day=day, metric="enrolled", sequence_pk=other.pk, cohort="mailed"), 4)
    report_counts_add(tally)

    assert counts() == before


def test_the_openapi_schema_documents_both_report_endpoints_with_since_and_until(tmp_path):
    import yaml
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())

    for url in ("/api/v1/reports/sequences/", "/api/v1/reports/sequences/{key}/"):
        operation = schema["paths"][url]["get"]
        parameters = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert {"since", "until"} <= parameters, url
        assert {"200", "400"} <= set(operation["responses"]), url
    holdout = schema["components"]["schemas"]["Holdout"]["properties"]
    assert {"lift", "revenue_lift"} <= set(holdout)
    revenue = schema["components"]["schemas"]["RevenueLift"]["properties"]
    assert {"difference", "low", "high", "p_value", "status"} <= set(revenue)
