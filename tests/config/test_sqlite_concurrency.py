"""The default SQLite set-up lets two processes (web and worker) write at once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import django, sys
django.setup()
from crm.services import activity_record, contact_upsert
name = sys.argv[1]
for n in range(150):
    contact = contact_upsert(email=f"{name}-{n}@example.com").contact
    activity_record(kind="page_viewed", source=name, contact=contact, idempotency_key=str(n))
print("ok")
"""


def run(args, env):
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_write_to_the_sqlite_file_at_once_without_locking_errors(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr

    writers = [run(["-c", WRITER, name], env) for name in ("web", "worker")]
    results = [writer.communicate(timeout=120) for writer in writers]

    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "ok"
