"""Finding 18: production refuses to start without a postal address or with http links."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from sequences.checks import POSTAL_ADDRESS_MISSING, SITE_URL_NOT_HTTPS, marketing_footer_check


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.POSTAL_ADDRESS = "Example Ltd, 1 Street, City"
    settings.SITE_URL = "https://crm.example.com"
    return settings


def test_a_complete_production_setup_passes(production):
    assert marketing_footer_check() == []


@pytest.mark.parametrize("address", ["", "   "])
def test_an_empty_postal_address_is_an_error(production, address):
    production.POSTAL_ADDRESS = address

    assert [error.id for error in marketing_footer_check()] == [POSTAL_ADDRESS_MISSING]


@pytest.mark.parametrize("url", ["http://crm.example.com", "crm.example.com", ""])
def test_a_site_url_without_https_is_an_error(production, url):
    production.SITE_URL = url

    assert [error.id for error in marketing_footer_check()] == [SITE_URL_NOT_HTTPS]


def test_the_check_stops_manage_py(production):
    production.POSTAL_ADDRESS = ""

    with pytest.raises(SystemCheckError, match="nextstep.E003"):
        call_command("check")


def test_local_development_is_not_bothered(settings):
    settings.DEBUG = True
    settings.POSTAL_ADDRESS = ""
    settings.SITE_URL = "http://127.0.0.1:8000"

    assert marketing_footer_check() == []
