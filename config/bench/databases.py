"""The bench's own databases: one cached data set per size, cloned for every run.

Same engine as DATABASE_URL, never the same database: PostgreSQL gets
`<name>_bench_<size>` (the cache) and `<name>_bench_<size>_run` (the clone a run may
dirty); SQLite gets `<file>_bench_<size>.sqlite3` beside the user's file, and a
`_run` copy. A cached set is reused while its fingerprint (generator version, size)
matches; migrations added since it was built are applied to it, the way production
migrates its own data (a 1M set takes most of an hour to build).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url

#: Bump when the generated data changes shape, so cached sets are rebuilt.
GENERATOR_VERSION = 2  # 2: contacts carry who vouched for them


@dataclass(frozen=True)
class BenchDatabase:
    url: str
    engine: str  # "sqlite" or "postgresql"
    name: str  # a file path (SQLite) or a database name

    def with_suffix(self, suffix: str) -> BenchDatabase:
        if self.engine == "sqlite":
            path = Path(self.name)
            new = str(path.with_name(f"{path.stem}{suffix}{path.suffix or '.sqlite3'}"))
            return BenchDatabase(f"sqlite:///{new}", "sqlite", new)
        parts = urlsplit(self.url)
        new = f"{self.name}{suffix}"
        return BenchDatabase(urlunsplit(parts._replace(path=f"/{new}")), "postgresql", new)


def user_database(url: str) -> BenchDatabase:
    parsed = dj_database_url.parse(url)
    engine = parsed["ENGINE"]
    if engine.endswith("sqlite3"):
        return BenchDatabase(url, "sqlite", str(Path(parsed["NAME"]).resolve()))
    if engine.endswith("postgresql"):
        return BenchDatabase(url, "postgresql", parsed["NAME"])
    raise ValueError(f"bench supports SQLite and PostgreSQL, not {engine}")


def cached(user: BenchDatabase, size: str) -> BenchDatabase:
    return user.with_suffix(f"_bench_{size}")


def run_copy(cache: BenchDatabase) -> BenchDatabase:
    return cache.with_suffix("_run")


def fingerprint(size: str) -> str:
    text = "\n".join([str(GENERATOR_VERSION), size])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- Server-side operations (the orchestrator has no Django connection to these) ---------


def _admin_connection(db: BenchDatabase):
    import psycopg

    parsed = dj_database_url.parse(db.url)
    return psycopg.connect(
        host=parsed["HOST"] or None,
        port=parsed["PORT"] or None,
        user=parsed["USER"] or None,
        password=parsed["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def exists(db: BenchDatabase) -> bool:
    if db.engine == "sqlite":
        return Path(db.name).exists()
    with _admin_connection(db) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db.name]).fetchone()


def drop(db: BenchDatabase) -> None:
    if db.engine == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(db.name + suffix).unlink(missing_ok=True)
        return
    with _admin_connection(db) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


def create(db: BenchDatabase, template: BenchDatabase | None = None) -> None:
    """An empty database, or a copy of `template` (which must have no open connections)."""
    drop(db)
    if db.engine == "sqlite":
        if template is not None:
            # The backup API copies a consistent database, whatever sits in the WAL file.
            with sqlite3.connect(template.name) as source, sqlite3.connect(db.name) as target:
                source.backup(target)
        return
    with _admin_connection(db) as conn:
        clause = f' TEMPLATE "{template.name}"' if template else ""
        conn.execute(f'CREATE DATABASE "{db.name}"{clause}')


def _read(db: BenchDatabase, query: str) -> list[tuple]:
    if db.engine == "sqlite":
        with sqlite3.connect(db.name) as conn:
            return conn.execute(query).fetchall()
    import psycopg

    with psycopg.connect(db.url) as conn:
        return conn.execute(query).fetchall()


def read_fingerprint(db: BenchDatabase) -> str:
    """The fingerprint stored by a finished build; "" when there is none."""
    try:
        rows = _read(db, "SELECT fingerprint FROM bench_dataset")
    except Exception:
        return ""
    return rows[0][0] if rows else ""


def applied_migrations(db: BenchDatabase) -> set[str]:
    """`app.name` of every migration recorded in the data set."""
    return {f"{app}.{name}" for app, name in _read(db, "SELECT app, name FROM django_migrations")}
