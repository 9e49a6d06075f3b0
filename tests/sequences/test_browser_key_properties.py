"""What a browser key sends may start a sequence, but never becomes email content (invariant 8)."""

import pytest

from crm.models import ApiKey
from crm.services import activity_record
from sequences.models import Enrollment
from tests.factories import ApiKeyFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db


def record(contact, source, capture):
    with capture(execute=True):
        activity_record(
            kind="form_submitted",
            source=source,
            contact=contact,
            properties={"first_name": "Your account was compromised, call 555"},
        )
    return Enrollment.objects.get(contact=contact)


def test_a_browser_keys_properties_never_reach_the_trigger_context(
    consenting_contact, django_capture_on_commit_callbacks
):
    build_sequence([email_step("hello")])
    browser = ApiKeyFactory(kind=ApiKey.Kind.BROWSER)

    enrollment = record(
        consenting_contact, browser.source_label, django_capture_on_commit_callbacks
    )

    assert enrollment.trigger_properties == {"kind": "form_submitted"}


def test_a_server_keys_properties_stay_available_to_templates(
    consenting_contact, django_capture_on_commit_callbacks
):
    build_sequence([email_step("hello")])
    server = ApiKeyFactory(kind=ApiKey.Kind.SERVER)

    enrollment = record(consenting_contact, server.source_label, django_capture_on_commit_callbacks)

    assert enrollment.trigger_properties["first_name"].startswith("Your account")
