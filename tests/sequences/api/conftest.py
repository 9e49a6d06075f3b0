"""The API's key clients (server and browser), shared with tests/crm/api."""

from tests.crm.api.conftest import (  # noqa: F401  (fixtures)
    browser_client,
    browser_key,
    fresh_rate_limits,
    server_client,
    server_key,
)
