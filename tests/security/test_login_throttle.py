"""Finding 10: wrong admin passwords are throttled per username and client address."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def attempt(client, password: str, ip: str = "198.51.100.1", username: str = "mara"):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, secure=True
    )


@pytest.fixture
def mara(db):
    return UserFactory(username="mara")  # password "password"


def test_ten_wrong_passwords_lock_the_account_for_that_address(client, mara, settings):
    answers = [attempt(client, f"wrong-{n}").status_code for n in range(10)]

    locked = attempt(client, "password")

    assert answers == [200] * 9 + [429]
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_address_and_per_username(client, mara):
    for n in range(10):
        attempt(client, f"wrong-{n}")

    assert attempt(client, "password", ip="198.51.100.2").status_code == 302
    client.logout()
    UserFactory(username="nia")
    assert attempt(client, "password", username="nia").status_code == 302


def test_the_lock_ends_after_the_cool_off(client, mara, settings):
    for n in range(10):
        attempt(client, f"wrong-{n}")
    # Time passes: the attempts move back past the cool-off (axes reads its own clock).
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=1)
    )

    response = attempt(client, "password")

    assert response.status_code == 302


def test_a_correct_password_resets_the_count(client, mara):
    for n in range(9):
        attempt(client, f"wrong-{n}")
    assert attempt(client, "password").status_code == 302
    client.logout()

    answers = [attempt(client, f"again-{n}").status_code for n in range(9)]

    assert set(answers) == {200}


def test_behind_a_proxy_the_lock_follows_the_client_not_the_proxy(client, mara, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(10):
        client.post(
            LOGIN,
            {"username": "mara", "password": f"wrong-{n}"},
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
            secure=True,
        )

    other_client = client.post(
        LOGIN,
        {"username": "mara", "password": "password"},
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="198.51.100.2",
        secure=True,
    )

    assert other_client.status_code == 302
