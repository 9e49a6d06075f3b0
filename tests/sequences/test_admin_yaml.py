"""Admin actions: export selected sequences as YAML, import a YAML file."""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.config_io import config_import
from sequences.config_sections import sequences_export_yaml
from sequences.models import Sequence
from tests.factories import EmailTemplateFactory, SegmentFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sequences_sequence_changelist"
IMPORT = "admin:sequences_sequence_import_yaml"


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


def export(client, *sequences):
    response = client.post(
        reverse(CHANGELIST),
        {"action": "export_yaml", "_selected_action": [s.pk for s in sequences]},
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="sequences.yaml"'
    return response.content.decode()


def upload(client, text: str):
    file = SimpleUploadedFile("sequences.yaml", text.encode(), content_type="application/yaml")
    return client.post(reverse(IMPORT), {"file": file})


def test_export_holds_the_selected_sequences_and_their_templates(staff_client, superuser):
    EmailTemplateFactory(key="variant-b")
    variants = [
        {"key": "a", "template": "chosen-hello", "split": 50},
        {"key": "b", "template": "variant-b", "split": 50},
    ]
    chosen = build_sequence(
        [email_step("hello", variants=variants)],
        key="chosen",
        activate=False,
        owner=superuser,
        audience_segment=SegmentFactory(key="customers"),
    )
    build_sequence([email_step("hello")], key="other", activate=False)

    document = yaml.safe_load(export(staff_client, chosen))

    assert [item["key"] for item in document["sequences"]] == ["chosen"]
    assert document["sequences"][0]["audience_segment"] == "customers"
    assert [t["key"] for t in document["email_templates"]] == ["chosen-hello", "variant-b"]


def test_export_import_export_is_identical(superuser):
    sequence = build_sequence([email_step("hello")], key="round-trip", owner=superuser)
    first = sequences_export_yaml(sequences=[sequence])

    config_import(first)

    sequence.refresh_from_db()
    assert sequences_export_yaml(sequences=[sequence]) == first


def test_import_creates_sequences_as_drafts(staff_client, superuser):
    sequence = build_sequence([email_step("hello")], key="moving", activate=False)
    text = export(staff_client, sequence).replace("key: moving", "key: moved")

    response = upload(staff_client, text)

    assert response.status_code == 302
    assert Sequence.objects.get(key="moved").status == Sequence.Status.DRAFT


def test_import_shows_errors_with_section_key_and_field(staff_client):
    sequence = build_sequence([email_step("hello")], key="broken", activate=False)
    text = export(staff_client, sequence).replace("template: broken-hello", "template: missing")

    response = upload(staff_client, text)

    assert response.status_code == 200
    assert "sequences[broken].steps[0].template: there is no email template" in (
        response.content.decode().replace("&#x27;", "'")
    )
    assert Sequence.objects.get(key="broken").steps.get().template.key == "broken-hello"


def test_import_page_needs_change_permission(client, salesperson):
    client.force_login(salesperson)

    response = client.get(reverse(IMPORT))

    assert response.status_code == 403
