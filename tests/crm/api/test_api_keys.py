import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command

from crm.models import ApiKey
from crm.services.api_keys import api_key_hash
from tests.crm.api.conftest import SITE

ADMIN = "/admin/crm/apikey/"


@pytest.fixture
def api_key_admin():
    return admin.site._registry[ApiKey]


@pytest.mark.django_db
def test_create_api_key_prints_the_key_once_and_stores_its_hash(capsys):
    call_command("create_api_key", "Website", "--kind", "browser", "--origin", SITE + "/")

    out, err = capsys.readouterr()
    key = out.strip()
    api_key = ApiKey.objects.get()
    assert key.startswith("ns_live_")
    assert api_key.key_hash == api_key_hash(key)
    assert (api_key.kind, api_key.allowed_origins) == ("browser", [SITE])
    assert api_key.display_prefix in err and key not in err


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "browser"], "at least one allowed origin"),
        (["--kind", "browser", "--origin", "https://x.example/path"], "no path"),
        (["--rate-limit", "0"], "greater than or equal to 1"),
    ],
)
def test_create_api_key_explains_what_is_wrong(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", "Website", *args)


@pytest.mark.django_db
def test_the_admin_shows_a_new_key_once_and_stores_only_its_hash(client, superuser, api_key_admin):
    client.force_login(superuser)

    response = client.post(
        ADMIN + "add/",
        {
            "name": "Website",
            "kind": "browser",
            "allowed_origins": f"{SITE}\nhttps://shop.example.com/",
            "rate_limit_per_minute": 120,
        },
        follow=True,
    )

    [message] = [str(m) for m in response.context["messages"] if "Copy this key" in str(m)]
    key = message.rsplit(" ", 1)[-1]
    api_key = ApiKey.objects.get()
    assert key in response.content.decode()
    assert api_key.key_hash == api_key_hash(key)
    assert api_key.allowed_origins == [SITE, "https://shop.example.com"]
    assert api_key.created_by == superuser
    assert key not in client.get(f"{ADMIN}{api_key.pk}/change/").content.decode()


@pytest.mark.django_db
def test_the_admin_refuses_a_browser_key_without_origins(client, superuser, api_key_admin):
    client.force_login(superuser)

    response = client.post(
        ADMIN + "add/", {"name": "Website", "kind": "browser", "rate_limit_per_minute": 60}
    )

    assert response.status_code == 200
    assert not ApiKey.objects.exists()
    assert "at least one allowed origin" in response.content.decode()


@pytest.mark.django_db
def test_the_admin_revokes_keys(client, superuser, server_key, api_key_admin):
    client.force_login(superuser)

    client.post(ADMIN, {"action": "revoke", "_selected_action": [server_key.api_key.pk]})

    assert ApiKey.objects.get().revoked_at is not None


@pytest.mark.django_db
def test_the_admin_pages_open(client, superuser, server_key, api_key_admin):
    client.force_login(superuser)

    pages = [ADMIN, ADMIN + "?q=web", ADMIN + "add/", f"{ADMIN}{server_key.api_key.pk}/change/"]

    assert [client.get(page).status_code for page in pages] == [200] * 4
    assert not api_key_admin.has_delete_permission(None)
