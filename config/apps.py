"""`config` as an installed app: it owns `manage.py bench` (config/management, config/bench),
and tunes the garbage collector in qcluster workers (config.gc_tuning)."""

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
        # Each django-q2 worker process tunes the collector once it is spawned (only a
        # real qcluster sends post_spawn: the tests' sync broker never does).
        from django_q.signals import post_spawn

        from config.gc_tuning import on_worker_spawn

        post_spawn.connect(on_worker_spawn, dispatch_uid="config_gc_tuning")
