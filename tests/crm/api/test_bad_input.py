"""Bad query strings and paths get a clear 4xx in the API's JSON shape, never a 500 or HTML
(issue 9, findings 6 and 12)."""

import pytest

from crm.api.filters import MAX_ID
from tests.crm.api.conftest import client_for

TOO_BIG = str(MAX_ID + 1)  # 9223372036854775808


@pytest.fixture
def client(server_key):
    return client_for(server_key.key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/contacts/", "owner"),
        ("/api/v1/contacts/", "company"),
        ("/api/v1/companies/", "owner"),
        ("/api/v1/deals/", "contact"),
        ("/api/v1/deals/", "owner"),
        ("/api/v1/deals/", "company"),
        ("/api/v1/handoffs/", "owner"),
        ("/api/v1/handoffs/", "contact"),
    ],
)
@pytest.mark.parametrize("value", [TOO_BIG, "-1", "0", "1.5", "abc"])
def test_an_id_filter_out_of_range_is_a_400_naming_it(client, path, parameter, value):
    response = client.get(path, {parameter: value})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert parameter in response.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize("parameter", ["score_min", "score_max"])
def test_a_score_past_32_bits_is_a_400(client, parameter):
    response = client.get("/api/v1/contacts/", {parameter: str(2**40)})

    assert response.status_code == 400
    assert parameter in response.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/contacts/", "updated_since"),
        ("/api/v1/contacts/", "owner"),
        ("/api/v1/deals/", "outcome"),
        ("/api/v1/handoffs/", "created_since"),
        ("/api/v1/handoffs/", "is_open"),
    ],
)
def test_an_empty_typed_parameter_is_a_400(client, path, parameter):
    response = client.get(f"{path}?{parameter}=")

    assert response.status_code == 400
    assert parameter in response.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/segments/", "/api/v1/handoffs/"])
@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=cD1hYmM%3D", "cursor"),  # base64 of "p=abc": a forged position
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=5000", "page_size"),
    ],
)
def test_a_bad_cursor_or_page_size_is_a_400(client, path, query, parameter):
    response = client.get(f"{path}?{query}")

    assert response.status_code == 400
    assert parameter in response.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/contacts/abc/export/",
        "/api/v1/contacts/1.5/",
        "/api/v1/segments/not%20a%20slug/members/",
        "/api/v1/no-such-thing/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_path_that_names_nothing_is_a_json_404(client, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_the_schema_says_what_the_api_accepts(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]

    company_size = components["Company"]["properties"]["size"]["oneOf"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in company_size
    assert components["Identify"]["additionalProperties"] is False
    assert [option["required"] for option in components["Identify"]["anyOf"]] == [
        ["email"],
        ["external_id"],
    ]
    identify = schema["paths"]["/api/v1/identify/"]["post"]
    assert identify["requestBody"]["required"] is True
    assert "202" in identify["responses"]


# --- Finding 7: body size -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_under_the_documented_limit_is_recorded(client):
    # About 2.7 MB: over Django's default 2.5 MB, well under the API's 10 MB.
    events = [
        {"type": "page_viewed", "anonymous_id": f"v-{n}", "properties": {"pad": "x" * 2600}}
        for n in range(1000)
    ]

    response = client.post("/api/v1/events/", {"events": events}, format="json")

    assert response.status_code == 200
    assert response.json()["recorded"] == 1000


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/events/", "/api/v1/identify/", "/api/v1/contacts/"])
def test_a_body_over_the_limit_is_a_json_413(client, settings, path):
    settings.API_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"email": "ada@example.com", "type": "page_viewed", "properties": {"pad": "x" * 2000}}

    response = client.post(path, body, format="json")

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0065-09-02T05:46:41-17:18", 200),  # an offset PostgreSQL refuses: compared in UTC
        ("2025-01-31T00:00:00+14:00", 200),
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
        ("yesterday", 400),
    ],
)
def test_updated_since_is_compared_in_utc_or_refused(client, value, status):
    response = client.get("/api/v1/companies/", {"updated_since": value})

    assert response.status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/deals/", "/api/v1/handoffs/"])
def test_a_misspelt_filter_is_a_400_naming_it_not_an_unfiltered_list(client, path):
    response = client.get(path, {"ownr": "3", "%(x)s%": "1"})

    assert response.status_code == 400
    assert "Unknown parameter 'ownr'" in str(response.json())
    assert "Unknown parameter '%(x)s%'" in str(response.json())
