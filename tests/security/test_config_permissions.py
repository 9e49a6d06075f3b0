"""Finding 2: every config import checks the admin's add/change permissions, item by item."""

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm.config_io import ConfigInvalid, config_export, config_import
from crm.models import DealStage, LifecycleStage
from scoring.models import Territory
from sequences.models import EmailTemplate
from tests.factories import EmailTemplateFactory, TerritoryFactory, UserFactory

pytestmark = pytest.mark.django_db

IMPORT = "admin:sequences_sequence_import_yaml"


def edited(change) -> str:
    document = yaml.safe_load(config_export())
    change(document)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def item(document, section, key):
    return next(entry for entry in document[section] if entry["key"] == key)


def upload(client, text: str):
    file = SimpleUploadedFile("config.yaml", text.encode(), content_type="application/yaml")
    return client.post(reverse(IMPORT), {"file": file}, secure=True)


def the_finding(document):
    """What the Marketing user did: pipeline, lifecycle and routing edits in one file."""
    item(document, "deal_stages", "won")["win_probability"] = 50
    item(document, "lifecycle_stages", "new_customer")["name"] = "Paying"
    item(document, "territories", "emea")["users"] = ["marketer"]


def test_marketing_cannot_change_stages_or_territories_through_the_import_page(client, marketer):
    TerritoryFactory(key="emea", name="EMEA", countries="DE")
    client.force_login(marketer)
    won = DealStage.objects.get(key="won").win_probability

    response = upload(client, edited(the_finding))

    page = response.content.decode()
    assert response.status_code == 200
    assert "deal_stages[won]: you may not change deal stages" in page
    assert "lifecycle_stages[new_customer]: you may not change lifecycle stages" in page
    assert "territories[emea]: you may not change territories" in page
    # Nothing was written, not even the parts the user may change.
    assert DealStage.objects.get(key="won").win_probability == won
    assert LifecycleStage.objects.get(key="new_customer").name != "Paying"
    assert not Territory.objects.get(key="emea").users.exists()


def test_marketing_may_import_a_whole_file_changing_only_what_it_may(client, marketer):
    template = EmailTemplateFactory(key="welcome")
    client.force_login(marketer)

    response = upload(
        client, edited(lambda d: item(d, "email_templates", "welcome").update(name="Hi"))
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    template.refresh_from_db()
    assert template.name == "Hi"


def test_add_and_change_are_checked_separately():
    user = UserFactory(username="changer")
    user.user_permissions.add(
        Permission.objects.get(codename="change_emailtemplate"),
        Permission.objects.get(codename="view_emailtemplate"),
    )
    EmailTemplateFactory(key="existing")

    def add_one(document):
        item(document, "email_templates", "existing")["name"] = "Changed"
        document["email_templates"].append({**item(document, "email_templates", "existing")})
        document["email_templates"][-1]["key"] = "brand-new"

    with pytest.raises(ConfigInvalid) as refused:
        config_import(edited(add_one), user=user)

    assert [str(error) for error in refused.value.errors] == [
        "email_templates[brand-new]: you may not add email templates (needs the "
        "sequences.add_emailtemplate permission); nothing was imported"
    ]
    assert EmailTemplate.objects.get(key="existing").name != "Changed"


def test_a_dry_run_reports_the_refusal_too(salesperson):
    with pytest.raises(ConfigInvalid, match="you may not change deal stages"):
        config_import(
            edited(lambda d: item(d, "deal_stages", "won").update(name="Closed")),
            user=salesperson,
            dry_run=True,
        )


def test_the_command_checks_the_named_user(tmp_path, marketer):
    path = tmp_path / "config.yaml"
    path.write_text(edited(lambda d: item(d, "deal_stages", "won").update(name="Closed")))

    with pytest.raises(CommandError, match="you may not change deal stages"):
        call_command("import_config", str(path), "--user", "marketer")
    with pytest.raises(CommandError, match="No active staff user"):
        call_command("import_config", str(path), "--user", "nobody")

    assert DealStage.objects.get(key="won").name != "Closed"
    call_command("import_config", str(path))  # the operator's shell has every right
    assert DealStage.objects.get(key="won").name == "Closed"


def test_a_superuser_may_import_everything(superuser):
    config_import(edited(the_finding_without_territory), user=superuser)

    assert DealStage.objects.get(key="won").win_probability == 50


def the_finding_without_territory(document):
    item(document, "deal_stages", "won")["win_probability"] = 50
