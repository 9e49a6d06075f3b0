"""The orchestrator: cached data sets, a clone per run, a child process per data set."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db.migrations.loader import MigrationLoader

from config.bench import databases
from config.bench.report import Figure, from_json
from config.bench.scales import Scale

SETTINGS = "config.bench.settings"


def migration_names() -> list[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return [f"{app}.{name}" for app, name in loader.disk_migrations]


def child(mode: str, db: databases.BenchDatabase, args: list[str], workdir: str) -> int:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": db.url,
        "NEXTSTEP_BENCH_DATABASE_URL": db.url,
        "NEXTSTEP_BENCH_DIR": workdir,
        # Laptop static files and no HTTPS redirect; config.bench.settings turns DEBUG off.
        "DEBUG": "1",
    }
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench", "--inside"]
    return subprocess.run([*command, mode, *args], env=env).returncode


class Runner:
    def __init__(self, scale: Scale, only: list[str], rebuild: bool, say, budget=None):
        self.scale, self.only, self.rebuild, self.say = scale, only, rebuild, say
        self.budget = budget
        self.user = databases.user_database(settings.DATABASE_URL)
        self.failed = False

    def plan(self) -> list[tuple[str, list[str]]]:
        main = [
            name
            for name in self.only
            if name != "segment" or self.scale.size in self.scale.segment_sizes
        ]
        plan = [(self.scale.size, main)] if main else []
        if "segment" in self.only:
            plan += [
                (size, ["segment"]) for size in self.scale.segment_sizes if size != self.scale.size
            ]
        # The scale's own data set first: a long run cut short still has its main figures.
        return plan[:1] + sorted(plan[1:], key=lambda item: databases_size_order(item[0]))

    def run(self) -> list[Figure]:
        figures: list[Figure] = []
        for size, scenarios in self.plan():
            with tempfile.TemporaryDirectory(prefix="nextstep-bench-") as workdir:
                cache = self.ensure(size, workdir)
                clone = databases.run_copy(cache)
                databases.create(clone, template=cache)
                out = Path(workdir) / "figures.json"
                args = ["--scale", self.scale.name, "--size", size, "--only", ",".join(scenarios)]
                args += ["--budget", str(self.budget)] if self.budget else []
                self.say(f"running {', '.join(scenarios)} on {clone.name}")
                code = child("run", clone, [*args, "--out", str(out)], workdir)
                self.failed |= code != 0
                if out.exists():
                    figures += from_json(out.read_text())
                databases.drop(clone)
        return figures

    def build_only(self) -> None:
        for size, _scenarios in self.plan():
            with tempfile.TemporaryDirectory(prefix="nextstep-bench-") as workdir:
                self.ensure(size, workdir)

    def migrated(self, cache: databases.BenchDatabase, workdir: str) -> bool:
        """Bring a cached data set up to this checkout's migrations; False if it can't be."""
        applied, on_disk = databases.applied_migrations(cache), set(migration_names())
        if applied - on_disk:
            # Built by another branch: migrating backwards is not worth trusting.
            self.say(f"{cache.name} has migrations this checkout lacks: " + ", ".join(
                sorted(applied - on_disk)[:3]))  # fmt: skip
            return False
        if on_disk - applied:
            self.say(f"migrating {cache.name}: " + ", ".join(sorted(on_disk - applied)))
            return child("migrate", cache, [], workdir) == 0
        return True

    def ensure(self, size: str, workdir: str) -> databases.BenchDatabase:
        """The cached data set of this size, built first when missing or stale."""
        cache = databases.cached(self.user, size)
        fingerprint = databases.fingerprint(size)
        fresh = not self.rebuild and databases.read_fingerprint(cache) == fingerprint
        if fresh and self.migrated(cache, workdir):
            self.say(f"reusing the {size} data set in {cache.name}")
            return cache
        self.say(f"building the {size} data set in {cache.name}")
        started = time.monotonic()
        databases.create(cache)
        if child("build", cache, ["--size", size, "--fingerprint", fingerprint], workdir):
            databases.drop(cache)
            raise RuntimeError(f"building the {size} data set failed")
        self.say(f"built the {size} data set in {time.monotonic() - started:.0f} s")
        return cache


def databases_size_order(label: str) -> int:
    from config.bench.scales import SIZES

    return SIZES[label].contacts


def meta(scale: Scale, command: str) -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    ).stdout.strip()
    return {
        "scale": scale.name,
        "engine": databases.user_database(settings.DATABASE_URL).engine,
        "broker": "redis" if settings.REDIS_URL else "orm",
        "command": command,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
    }


def write_json(path: str, figures: list[Figure], info: dict) -> None:
    from config.bench.report import to_json

    Path(path).write_text(to_json(figures, info))
    json.loads(Path(path).read_text())  # written whole, readable
