"""API clients holding a server key or a browser key, and fresh rate-limit counters."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from crm.models import ApiKey
from crm.services import api_key_create

SITE = "https://www.example.com"


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def server_key(db):
    return api_key_create(name="Shop backend", kind=ApiKey.Kind.SERVER)


@pytest.fixture
def browser_key(db):
    return api_key_create(name="Website", kind=ApiKey.Kind.BROWSER, allowed_origins=[SITE])


def client_for(key: str, **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    return client


@pytest.fixture
def server_client(server_key):
    return client_for(server_key.key)


@pytest.fixture
def browser_client(browser_key):
    return client_for(browser_key.key, HTTP_ORIGIN=SITE)
