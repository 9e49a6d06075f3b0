"""`manage.py bench`: a data set in its own database, scenarios, a report (docs/performance.md).

The command (config/management/commands/bench.py) runs in the user's environment and
only orchestrates: it builds or reuses a cached data set per size, clones it, and runs
the scenarios in a child process whose settings (config.bench.settings) point at the
clone. Scenarios use public surfaces only: HTTP through Django's test client, services,
task entry points, the registered schedules and `qcluster` itself.
"""
