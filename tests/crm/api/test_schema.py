import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from crm.api.schema_view import CachedSchemaView

ENDPOINTS = {
    "/api/v1/events/": {"post"},
    "/api/v1/identify/": {"post"},
    "/api/v1/contacts/": {"get", "post"},
    "/api/v1/contacts/{id}/": {"get", "patch"},
    "/api/v1/companies/": {"get", "post"},
    "/api/v1/companies/{id}/": {"get"},
    "/api/v1/deals/": {"get", "post"},
    "/api/v1/deals/{id}/": {"get", "patch"},
}


@pytest.fixture
def schema(tmp_path):
    """The OpenAPI schema, generated and validated; any warning fails."""
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_validates_and_documents_every_endpoint(schema):
    documented = {path: set(operations) for path, operations in schema["paths"].items()}

    for path, methods in ENDPOINTS.items():
        assert methods <= documented.get(path, set()), path


def test_every_operation_documents_the_error_shapes(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("401", "403", "429"):
                assert code in responses, f"{method} {path} {code}"
            assert operation["security"] == [{"ApiKey": []}]
    error = schema["components"]["schemas"]["ApiError"]
    assert {"error", "message", "fields", "retry_after"} <= set(error["properties"])


def test_the_events_endpoint_documents_its_per_event_results(schema):
    responses = schema["paths"]["/api/v1/events/"]["post"]["responses"]

    assert {"200", "207", "400"} <= set(responses)
    result = schema["components"]["schemas"]["EventResult"]["properties"]
    assert {"index", "status", "errors"} <= set(result)


@pytest.mark.django_db
def test_schema_and_interactive_docs_are_served_without_a_key():
    client = APIClient()

    schema = client.get("/api/v1/schema/")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == 200
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_interactive_docs_load_swagger_from_our_own_static_files():
    docs = APIClient().get("/api/v1/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
    assert "cdn" not in docs.lower()


# --- Finding 9: concurrent first requests ---------------------------------------------------


def test_concurrent_first_requests_all_get_the_same_schema_built_once(monkeypatch):
    CachedSchemaView._built.clear()
    original = SchemaGenerator.get_schema
    built = []

    def counting_get_schema(self, *args, **kwargs):
        built.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counting_get_schema)
    start = threading.Barrier(8)

    def fetch(_):
        start.wait()  # every thread asks at the same moment, as a fresh gunicorn worker's would
        response = Client().get("/api/v1/schema/?format=json")
        return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(fetch, range(8)))

    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert len(built) == 1
