"""`config` as an installed app: it owns `manage.py bench` (config/management, config/bench)."""

from django.apps import AppConfig
from django.conf import settings


class ConfigConfig(AppConfig):
    name = "config"
    label = "config"
    verbose_name = "Nextstep configuration"

    def ready(self):
        # Only inside a bench run (config.bench.settings): log every task enqueued and
        # finished, from every process, so the bench knows when the worker is done.
        if getattr(settings, "BENCH_TASK_LOG", ""):
            from config.bench import tasklog

            tasklog.connect()
