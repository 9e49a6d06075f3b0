"""`manage.py bench`: the whole command at its tiny scale, and the pieces that keep it safe.

No assertion here is about speed: the bench reports timings, tests only check that it
runs every scenario and reports every figure in the documented shape.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from config.bench import databases
from config.bench.report import Figure, meets, table
from config.bench.scales import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"name", "figure", "unit", "value", "baseline", "ratio", "size", "target", "passed"}


def test_bench_at_tiny_scale_runs_every_scenario_and_writes_the_json(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "1",
    }
    env.pop("REDIS_URL", None)  # the ORM broker in the bench's own file: nothing shared
    out = tmp_path / "bench.json"
    chart = tmp_path / "chart.png"
    command = [sys.executable, "manage.py", "bench", "--scale", "tiny", "--json", str(out)]

    done = subprocess.run(
        [*command, "--chart", str(chart)], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(out.read_text())
    figures = report["figures"]
    assert {figure["name"] for figure in figures} == set(SCENARIOS)
    assert all(set(figure) >= FIELDS for figure in figures)
    assert not [f for f in figures if f["figure"] == "crashed"]
    webhook = {f["figure"] for f in figures if f["name"] == "webhook"}
    assert {"accepted", "accepted_batched", "accepted_concurrent"} <= webhook
    assert report["meta"]["engine"] == "sqlite"
    assert chart.stat().st_size > 0
    assert "scenario" in done.stdout and "latency" in done.stdout
    # The user's database was never touched; the cached data set and no clone remain.
    assert not (tmp_path / "db.sqlite3").exists()
    assert (tmp_path / "db_bench_tiny.sqlite3").exists()
    assert not (tmp_path / "db_bench_tiny_run.sqlite3").exists()


def test_bench_databases_are_never_the_users():
    user = databases.user_database("postgres://postgres@127.0.0.1:5433/nextstep")
    cache = databases.cached(user, "100k")
    clone = databases.run_copy(cache)

    assert (cache.name, clone.name) == ("nextstep_bench_100k", "nextstep_bench_100k_run")
    assert clone.url == "postgres://postgres@127.0.0.1:5433/nextstep_bench_100k_run"


def test_bench_sqlite_files_sit_beside_the_users_file(tmp_path):
    user = databases.user_database(f"sqlite:///{tmp_path}/db.sqlite3")

    assert databases.cached(user, "quick").name == str(tmp_path / "db_bench_quick.sqlite3")


def test_unknown_scenario_is_a_clear_error():
    with pytest.raises(CommandError, match="Unknown scenario.*Known: latency"):
        call_command("bench", "--only", "latencyy")


def test_bench_settings_refuse_a_database_that_is_not_the_bench_one(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.bench.settings", "DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}  # fmt: skip
    env.pop("NEXTSTEP_BENCH_DATABASE_URL", None)

    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode != 0
    assert "only for bench databases" in done.stderr


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (10_000, ">= 10000", True),
        (9_999, ">= 10000", False),
        (99, "< 100", True),
        (100, "< 100", False),
    ],
)
def test_targets_read_as_written(value, target, expected):
    assert meets(value, target) is expected


def test_a_missed_target_is_reported_not_raised():
    figure = Figure(name="send", figure="workers_1", unit="msgs/s", value=5, size=300,
                    target=">= 1000", baseline=50)  # fmt: skip

    assert (figure.passed, figure.ratio) == (False, 0.1)
    assert "NO" in table([figure])


def _cache_recording(tmp_path, migrations: set[str]) -> databases.BenchDatabase:
    import sqlite3

    path = tmp_path / "db_bench_1m.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE django_migrations (app text, name text)")
        conn.executemany(
            "INSERT INTO django_migrations VALUES (?, ?)", [m.split(".", 1) for m in migrations]
        )
    return databases.BenchDatabase(f"sqlite:///{path}", "sqlite", str(path))


def test_a_cached_data_set_is_migrated_forward_not_rebuilt(tmp_path, monkeypatch):
    from config.bench import runner

    on_disk = set(runner.migration_names())
    newest = max(name for name in on_disk if name.startswith("crm."))
    cache = _cache_recording(tmp_path, on_disk - {newest})
    calls = []
    monkeypatch.setattr(runner, "child", lambda mode, db, args, workdir: calls.append(mode) or 0)
    run = runner.Runner(None, [], rebuild=False, say=lambda text: None)

    assert run.migrated(cache, str(tmp_path)) is True
    assert calls == ["migrate"]


def test_a_data_set_from_another_branch_is_rebuilt(tmp_path, monkeypatch):
    from config.bench import runner

    cache = _cache_recording(tmp_path, set(runner.migration_names()) | {"crm.9999_elsewhere"})
    calls = []
    monkeypatch.setattr(runner, "child", lambda mode, db, args, workdir: calls.append(mode) or 0)
    run = runner.Runner(None, [], rebuild=False, say=lambda text: None)

    assert run.migrated(cache, str(tmp_path)) is False
    assert calls == []


def _fake_worker(lines_and_sleeps: list) -> subprocess.Popen:
    """A process printing worker lines (JSON objects) with pauses (numbers) between them."""
    script = "import json, sys, time\n"
    for item in lines_and_sleeps:
        if isinstance(item, dict):
            script += f"print(json.dumps({item!r}), flush=True)\n"
        else:
            script += f"time.sleep({item})\n"
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)


@pytest.mark.parametrize(
    ("progress", "cut"),
    [(True, False), (False, True)],
    ids=["a fan-out reporting its parts gets the longer box", "anything else is cut"],
)
def test_a_fan_out_that_reports_progress_runs_in_the_longer_box(progress, cut):
    from config.bench.processes import _follow

    lines = [{"item": "decay", "started": True}]
    if progress:
        lines.append({"item": "decay", "progress": True, "parts_done": 1, "parts": 2})
    lines += [1.5, {"item": "decay", "seconds": 1.5, "outcome": "ok"}]
    process = _fake_worker(lines)
    results: dict = {}

    current, _ = _follow(process, results, per_item=0.5, per_fanout=30)
    process.kill()
    process.wait()

    assert (current == "decay") is cut
    if not cut:
        assert results["decay"]["outcome"] == "ok"


def test_an_idle_send_worker_stops_while_others_still_send(db, tmp_path, settings, monkeypatch):
    """A bench send worker whose own sweeps claim nothing stops after two of them, even
    while other workers keep writing to the mail log. It used to sweep again at once for
    as long as the log grew, so with more workers than batches the idle ones spun on
    claim queries and took the two cores from the workers sending (send.workers_4 <
    workers_2)."""
    from config.management.commands import bench_worker
    from sequences import tasks

    settings.BENCH_DIR = str(tmp_path)
    settings.BENCH_MAIL_LOG = str(tmp_path / "mail.log")
    sweeps = []

    def sweep():
        sweeps.append(1)
        with open(settings.BENCH_MAIL_LOG, "a") as log:  # another worker is still sending
            log.write(f"other{len(sweeps)}@example.com\t0\n")
        return (0, 0, False) if len(sweeps) > 1 else (50, 50, False)

    monkeypatch.setattr(tasks, "due_enrollments_sweep", sweep)
    monkeypatch.setattr(bench_worker.time, "sleep", lambda seconds: None)
    go = tmp_path / "go"
    go.touch()
    monkeypatch.setattr(bench_worker, "emit", lambda **values: sweeps.append(values))

    bench_worker.Command().send(str(go), str(9e12))

    assert sweeps[:3] == [1, 1, 1]
    assert sweeps[3]["claimed"] == sweeps[3]["sent"] == 50 and sweeps[3]["cpu"] >= 0
