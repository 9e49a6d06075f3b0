"""The role matrix: every admin page, action and view, and every API route, per role.

config.access holds what each role may do; these tests ask the running site over HTTP
and compare, and check that docs/admin.md shows the same tables, so the documentation,
the migrations' group permissions and the admins' overrides cannot drift apart.
"""

from pathlib import Path

import pytest

from config import access
from config.access import ANONYMOUS, ROLES, STAFF_ROLES
from tests.security.access_probe import (
    METHODS,
    admin_actions,
    admin_model_access,
    admin_view_allowed,
    admin_view_names,
    admin_view_urls,
    api_answer,
    api_routes,
    client_for,
    registered_models,
    role_users,
)

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "admin.md"
HOW_TO_FIX = "update config/access.py and paste `python -m config.access` into docs/admin.md"


#: django-q2 registers its queue's admin only with the ORM broker (no REDIS_URL).
ORM_BROKER_ONLY = {"django_q.ormq"}


def expected_models() -> set[str]:
    registered = {model._meta.label_lower for model in registered_models()}
    return {label for label in access.ADMIN_MODELS if label in registered} | (
        set(access.ADMIN_MODELS) - ORM_BROKER_ONLY
    )


def test_every_admin_model_is_in_the_matrix():
    labels = {model._meta.label_lower for model in registered_models()}

    assert labels == expected_models(), HOW_TO_FIX


def test_each_role_gets_exactly_the_admin_pages_the_matrix_gives():
    users = role_users()
    clients = {role: client_for(user) for role, user in users.items()}
    found, expected = {}, {}

    for model in registered_models():
        label = model._meta.label_lower
        found[label] = tuple(admin_model_access(clients[role], model) for role in STAFF_ROLES)
        expected[label] = access.ADMIN_MODELS.get(label)
        assert admin_model_access(clients[ANONYMOUS], model) == "", label

    assert found == expected, HOW_TO_FIX


def test_each_role_is_offered_exactly_the_actions_the_matrix_gives():
    users = role_users()
    found: dict[tuple[str, str], list[str]] = {}

    for model in registered_models():
        for role in ROLES:
            for action in admin_actions(users[role], model):
                found.setdefault((model._meta.label_lower, action), []).append(role)

    expected = {
        key: roles for key, roles in access.ADMIN_ACTIONS.items() if key[0] in expected_models()
    }
    assert {key: tuple(roles) for key, roles in found.items()} == expected, HOW_TO_FIX


def test_each_role_opens_exactly_the_extra_admin_views_the_matrix_gives():
    users = role_users()
    urls = admin_view_urls()
    assert set(urls) == admin_view_names() == set(access.ADMIN_VIEWS), HOW_TO_FIX

    found = {
        name: tuple(
            role for role in ROLES if admin_view_allowed(client_for(users[role]), name, url)
        )
        for name, url in urls.items()
    }

    assert found == access.ADMIN_VIEWS, HOW_TO_FIX


def test_every_api_route_is_in_the_matrix():
    assert tuple(api_routes()) == access.API_ROUTES, HOW_TO_FIX


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_the_api_without_a_key(role):
    client = client_for(role_users()[role])
    private = [route for route in access.API_ROUTES if route not in access.API_PUBLIC]

    answers = {
        (method, route): api_answer(client, method, route)
        for route in private
        for method in METHODS
    }
    public = {route: api_answer(client, "GET", route) for route in access.API_PUBLIC}

    assert {key for key, status in answers.items() if status != 401} == set()
    assert set(public.values()) == {200}


def test_docs_show_the_matrix():
    assert access.render_markdown() in DOCS.read_text(encoding="utf-8"), HOW_TO_FIX
