"""Settings come from the environment only; each case loads config.settings in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import anymail_settings, env_bool, env_int, env_list, parse_setting_value

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, config.settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "debug": s.DEBUG,
    "engine": db["ENGINE"],
    "options": db.get("OPTIONS", {}),
    "conn_max_age": db.get("CONN_MAX_AGE"),
    "health": db.get("CONN_HEALTH_CHECKS"),
    "q": {k: v for k, v in s.Q_CLUSTER.items() if k in ("orm", "redis")},
    "anymail": s.ANYMAIL,
    "hosts": s.ALLOWED_HOSTS,
    "site_url": s.SITE_URL,
    "email_backend": s.EMAIL_BACKEND,
}))
"""


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANYMAIL_", "DJANGO_"))}
    for name in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_with(**env: str) -> dict:
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_missing_secret_key_with_debug_off_is_a_startup_error():
    result = load_settings(DEBUG="0")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_local_defaults_are_sqlite_in_wal_mode_with_immediate_transactions_and_orm_broker():
    loaded = settings_with(DEBUG="1")

    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["options"]["transaction_mode"] == "IMMEDIATE"
    assert loaded["options"]["timeout"] >= 5
    assert "journal_mode=WAL" in loaded["options"]["init_command"]
    assert loaded["q"] == {"orm": "default"}
    assert loaded["email_backend"] == "anymail.backends.console.EmailBackend"


def test_postgres_url_gets_persistent_connections_and_redis_url_switches_the_broker():
    loaded = settings_with(
        SECRET_KEY="s" * 50,
        DATABASE_URL="postgres://u:p@db.internal:5432/nextstep",
        REDIS_URL="redis://cache.internal:6379/1",
        ALLOWED_HOSTS="crm.example.com, api.example.com",
        SITE_URL="https://crm.example.com/",
    )

    assert loaded["debug"] is False
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["conn_max_age"] > 0 and loaded["health"] is True
    assert loaded["q"] == {"redis": "redis://cache.internal:6379/1"}
    assert loaded["hosts"] == ["crm.example.com", "api.example.com"]
    assert loaded["site_url"] == "https://crm.example.com"


def test_every_anymail_env_var_lands_in_the_anymail_setting():
    loaded = settings_with(
        DEBUG="1",
        ANYMAIL_POSTMARK_SERVER_TOKEN="token-123",
        ANYMAIL_POSTMARK_API_URL="https://sandbox.example/",
        ANYMAIL_WEBHOOK_SECRET="user:pass",
        ANYMAIL_IGNORE_UNSUPPORTED_FEATURES="true",
    )

    assert loaded["anymail"] == {
        "POSTMARK_SERVER_TOKEN": "token-123",
        "POSTMARK_API_URL": "https://sandbox.example/",
        "WEBHOOK_SECRET": "user:pass",
        "IGNORE_UNSUPPORTED_FEATURES": True,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("False", False), ('{"tags": ["a"]}', {"tags": ["a"]}), ("plain", "plain")],
)
def test_anymail_values_are_parsed_to_what_anymail_expects(raw, expected):
    assert parse_setting_value(raw) == expected


def test_anymail_settings_ignore_other_variables():
    assert anymail_settings({"ANYMAIL_X": "1", "ANYMAIL_": "no", "OTHER": "y"}) == {"X": "1"}


def test_bad_values_are_reported_with_the_variable_name():
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe'"):
        env_bool("DEBUG", False, {"DEBUG": "maybe"})
    with pytest.raises(ImproperlyConfigured, match="Q_WORKERS='two'"):
        env_int("Q_WORKERS", 2, {"Q_WORKERS": "two"})
    with pytest.raises(ImproperlyConfigured, match="JSON"):
        parse_setting_value("{not json")


def test_lists_skip_blanks():
    assert env_list("ALLOWED_HOSTS", [], {"ALLOWED_HOSTS": "a.com, ,b.com,"}) == ["a.com", "b.com"]


def _documented_anymail_types() -> list[tuple[str, str, object]]:
    """(variable, example, expected value) for each row of the value-type table."""
    text = (ROOT / "docs" / "deliverability.md").read_text()
    section = text.split("### Value types of `ANYMAIL_*` variables", 1)[1].split("\n\n**", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`ANYMAIL_"):
            continue
        variable = cells[0].split("`")[1].replace("<ESP>", "POSTMARK")
        rows.append((variable, cells[2].strip("`"), json.loads(cells[3].strip("`"))))
    return rows


@pytest.mark.parametrize(("variable", "example", "expected"), _documented_anymail_types())
def test_every_documented_anymail_variable_becomes_its_documented_type(variable, example, expected):
    value = anymail_settings({variable: example})[variable.removeprefix("ANYMAIL_")]

    assert (list(value) if isinstance(value, tuple) else value) == expected
    assert type(value) is (
        tuple if isinstance(expected, list) and "TIMEOUT" in variable else type(expected)
    )


def test_the_documented_types_cover_every_anymail_variable_the_docs_name():
    documented = {variable for variable, _, _ in _documented_anymail_types()}
    assert {
        "ANYMAIL_REQUESTS_TIMEOUT",
        "ANYMAIL_WEBHOOK_SECRET",
        "ANYMAIL_SEND_DEFAULTS",
    } <= documented
    assert len(_documented_anymail_types()) >= 12


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("ANYMAIL_REQUESTS_TIMEOUT", "five", "not a timeout"),
        ("ANYMAIL_REQUESTS_TIMEOUT", "0", "not a timeout"),
        ("ANYMAIL_REQUESTS_TIMEOUT", "[1, 2, 3]", "not a timeout"),
        ("ANYMAIL_IGNORE_RECIPIENT_STATUS", "maybe", "ANYMAIL_IGNORE_RECIPIENT_STATUS='maybe'"),
        ("ANYMAIL_SEND_DEFAULTS", '["a"]', "must be a JSON object"),
        ("ANYMAIL_SEND_DEFAULTS", "{oops", "Cannot read ANYMAIL_SEND_DEFAULTS as JSON"),
    ],
)
def test_an_unreadable_anymail_value_fails_at_start_up_naming_the_variable(variable, raw, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        anymail_settings({variable: raw})


def test_a_requests_timeout_from_the_environment_reaches_the_settings_as_a_number():
    loaded = settings_with(DEBUG="1", ANYMAIL_REQUESTS_TIMEOUT="5")

    assert loaded["anymail"] == {"REQUESTS_TIMEOUT": 5}


Q_PROBE = """
import json, config.settings as s
print(json.dumps({k: s.Q_CLUSTER[k] for k in ("workers", "timeout", "retry", "queue_limit")}))
"""


@pytest.mark.parametrize(("workers", "timeout"), [("2", "120"), ("1", "30"), ("8", "600")])
def test_a_task_is_not_handed_out_again_while_it_waits_in_the_local_queue_or_runs(workers, timeout):
    """Finding 26: retry must outlast the wait behind the fetched tasks plus the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "Q_"))}
    env.update(DEBUG="1", Q_WORKERS=workers, Q_TIMEOUT=timeout)
    result = subprocess.run(
        [sys.executable, "-c", Q_PROBE], env=env, cwd=ROOT, capture_output=True, text=True
    )
    q = json.loads(result.stdout)

    tasks_ahead = q["queue_limit"] + 1  # the local queue and the one the pusher holds
    rounds_before_it_starts = -(-tasks_ahead // q["workers"])
    assert q["retry"] > q["timeout"] * (rounds_before_it_starts + 1)
    assert q["queue_limit"] <= q["workers"] * 2


def _postgres_options(argv: list[str], **env: str) -> str:
    """The libpq `options` a process started as `argv` would connect with."""
    probe = (
        f"import sys; sys.argv = {argv!r}\n"
        "import config.settings as s; print(s.DATABASES['default']['OPTIONS']['options'])"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "Q_"))}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**clean, "DEBUG": "1", "DATABASE_URL": "postgres://u:p@db/nextstep", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("argv", "env", "timeout"),
    [
        (["gunicorn", "config.wsgi"], {}, 30000),
        (["gunicorn", "config.wsgi"], {"DB_STATEMENT_TIMEOUT_MS": "5000"}, 5000),
        (["manage.py", "runserver"], {}, 30000),
        (["manage.py", "qcluster"], {"Q_TIMEOUT": "300"}, 300000),
        (["manage.py", "qcluster"], {"DB_WORKER_STATEMENT_TIMEOUT_MS": "0"}, 0),
        (["manage.py", "migrate"], {"DB_STATEMENT_TIMEOUT_MS": "5000"}, 0),
    ],
)
def test_postgres_connections_turn_jit_off_and_limit_statements_per_process(argv, env, timeout):
    options = _postgres_options(argv, **env).split()

    assert "jit=off" in options
    assert f"statement_timeout={timeout}" in options


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "8001"}, "http://127.0.0.1:8001"),
        ({"HOST": "localhost", "PORT": "9000"}, "http://localhost:9000"),
        ({"HOST": "0.0.0.0", "PORT": "8080"}, "http://127.0.0.1:8080"),
        ({"PORT": "8001", "SITE_URL": "https://crm.example.com/"}, "https://crm.example.com"),
    ],
)
def test_site_url_follows_host_and_port_unless_set(env, expected):
    from config.env import site_url

    assert site_url(env) == expected


def test_local_mode_links_follow_the_port_make_run_serves():
    loaded = settings_with(DEBUG="1", PORT="8123", SITE_URL="")

    assert loaded["site_url"] == "http://127.0.0.1:8123"


def test_a_port_that_is_not_a_port_is_a_startup_error():
    from config.env import site_url

    with pytest.raises(ImproperlyConfigured, match="not a TCP port"):
        site_url({"PORT": "70000"})
