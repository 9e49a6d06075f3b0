"""Open every registered admin page as a superuser and as each staff role.

Project models (crm, scoring, sequences, anything under the project directory) are
covered through the admin registry, so a newly registered model is tested as soon
as tests/factories.py has a `<Model>Factory` for it; without one the test fails.
Third-party admins (auth, django-q2) get their changelist and add page opened.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from tests import factories
from tests.conftest import ROLES
from tests.factories import UserFactory

SUPERUSER = "superuser"


def _is_project_model(model) -> bool:
    path = Path(model._meta.app_config.path).resolve()
    return path.is_relative_to(Path(settings.BASE_DIR).resolve()) and "site-packages" not in (
        path.parts
    )


REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)
PROJECT_MODELS = [model for model in REGISTERED if _is_project_model(model)]
OTHER_MODELS = [model for model in REGISTERED if not _is_project_model(model)]


def _label(model) -> str:
    return model._meta.label


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _login(client, role: str):
    if role == SUPERUSER:
        user = UserFactory(username="smoke-admin", is_superuser=True)
    else:
        user = UserFactory(username=f"smoke-{role.lower().replace(' ', '-')}", groups=[role])
    client.force_login(user)
    return user


def _make(model):
    factory = getattr(factories, f"{model.__name__}Factory", None)
    if factory is None:
        pytest.fail(
            f"tests/factories.py has no {model.__name__}Factory: add one so the admin "
            f"smoke test covers {model._meta.label}."
        )
    return factory()


def _may(user, action: str, model) -> bool:
    return user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}")


def _status(allowed: bool) -> int:
    return 200 if allowed else 403


def test_the_project_registers_its_crm_models():
    labels = {_label(model) for model in PROJECT_MODELS}

    assert {f"crm.{name}" for name in _CRM_MODELS} <= labels


@pytest.mark.django_db
@pytest.mark.parametrize("role", [SUPERUSER, *ROLES])
@pytest.mark.parametrize("model", PROJECT_MODELS, ids=_label)
def test_every_project_admin_page_opens_or_refuses_by_permission(client, role, model):
    user = _login(client, role)
    obj = _make(model)
    request = RequestFactory().get("/")
    request.user = user
    can_view = _may(user, "view", model) or _may(user, "change", model)
    # Ledgers refuse "add" whatever the permissions say, so ask the admin as well.
    can_add = _may(user, "add", model) and admin.site._registry[model].has_add_permission(request)

    changelist = client.get(_url(model, "changelist"))
    add = client.get(_url(model, "add"))
    change = client.get(_url(model, "change", obj.pk))

    assert changelist.status_code == _status(can_view)
    assert add.status_code == _status(can_add)
    assert change.status_code == _status(can_view)


@pytest.mark.django_db
@pytest.mark.parametrize("model", PROJECT_MODELS, ids=_label)
def test_every_project_changelist_searches_and_sorts(client, model):
    _login(client, SUPERUSER)
    _make(model)

    searched = client.get(_url(model, "changelist"), {"q": "example"})
    sorted_ = client.get(_url(model, "changelist"), {"o": "-1"})

    assert searched.status_code == 200
    assert sorted_.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("model", OTHER_MODELS, ids=_label)
def test_third_party_admin_pages_open_for_a_superuser(client, model):
    user = _login(client, SUPERUSER)
    request = RequestFactory().get("/")
    request.user = user
    can_add = admin.site._registry[model].has_add_permission(request)

    changelist = client.get(_url(model, "changelist"))
    add = client.get(_url(model, "add"))

    assert changelist.status_code == 200
    assert add.status_code == _status(can_add)


_CRM_MODELS = {
    "Contact",
    "Company",
    "LifecycleStage",
    "LifecycleStageChange",
    "Tag",
    "ConsentTopic",
    "ConsentText",
    "ConsentEntry",
    "Suppression",
    "DealStage",
    "Deal",
    "Activity",
    "Task",
    "Note",
}
