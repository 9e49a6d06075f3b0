"""The API keeps its published OpenAPI schema: Schemathesis with every check, in-process.

Schemathesis generates requests from /api/v1/schema/, valid ones and invalid ones,
and calls the WSGI app directly (no live server), once with a server key and once
with a browser key. Every check runs: no 5xx, only documented status codes, content
types, headers and bodies, invalid input refused, valid input accepted (issue 9,
finding 12).

Two rules the schema cannot state, and how this test keeps them:
- Write requests are also checked against today's data (a contact id must exist, a
  stage key must be one of the pipeline's, an event at most a day ahead). Valid-looking
  input may therefore get a 400 there, and only there, in the documented error shape.
- A cursor is opaque: only those the API handed out are valid. Valid-mode requests
  leave it out; invalid ones must still get a 400.
Text never contains NUL characters (PostgreSQL cannot store them; docs/events.md).

Schemathesis's own pytest integration needs pytest < 9 (it reads a private node
attribute), so each operation's Hypothesis strategy is driven here with @given.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from crm.models import ApiKey
from tests.crm.api.conftest import SITE
from tests.factories import CompanyFactory, ContactFactory, DealFactory

#: Examples per operation and mode: bounded so both keys take a minute or two.
EXAMPLES = 10
CONFIG = {"generation": {"allow-x00": False, "codec": "utf-8"}}
#: What a valid-looking write may get when today's data refuses it (see above).
WRITE_ANSWERS = {200, 201, 202, 207, 400, 401, 403, 404, 409, 429}

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests on every run: CI never flakes on a new example
    phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk, quickly
    database=None,
)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Do what Django's test Client does around each request: the WSGI handler's signals
    would close the test's database connection mid-transaction (PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def crm_data(db):
    company = CompanyFactory()
    contact = ContactFactory(company=company)
    DealFactory(contact=contact, company=company)


def fuzz(headers: dict[str, str]) -> list[str]:
    """Run every operation in both modes; return one report per failing operation."""
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/",
        get_wsgi_application(),
        config=schemathesis.Config.from_dict(CONFIG),
    )
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(operation, mode, headers)
            # Schemathesis raises an exception group: collect every operation's failures.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode}]: {exc}")
    return failures


def fuzz_operation(operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    is_write = operation.method.upper() != "GET"
    positive = mode == GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def check(case):
        if positive and case.query:
            case.query.pop("cursor", None)
        if positive and is_write:
            response = case.call_and_validate(
                headers=headers, excluded_checks=[positive_data_acceptance]
            )
            assert response.status_code in WRITE_ANSWERS, response.text
        else:
            case.call_and_validate(headers=headers)

    check()


def unthrottled(api_key) -> str:
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(rate_limit_per_minute=1_000_000)
    return api_key.key


@pytest.mark.django_db
def test_the_api_keeps_its_schema_with_a_server_key(server_key, crm_data):
    failures = fuzz({"Authorization": f"Bearer {unthrottled(server_key)}"})

    assert failures == [], "\n\n".join(failures)


@pytest.mark.django_db
def test_the_api_keeps_its_schema_with_a_browser_key(browser_key, crm_data):
    failures = fuzz({"Authorization": f"Bearer {unthrottled(browser_key)}", "Origin": SITE})

    assert failures == [], "\n\n".join(failures)
