"""The garbage collector tuning (config.gc_tuning): where it runs, and GC_TUNING=0."""

import gc
import importlib
import sys

import pytest
from django_q.conf import Conf
from django_q.signals import post_spawn
from django_q.tasks import async_task

from config import gc_tuning


@pytest.fixture(autouse=True)
def collector_restored():
    """Each test starts and ends with the collector as this test process had it."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_start_up_objects_and_raises_the_generation_0_threshold(settings):
    settings.GC_TUNING = True
    generations_1_and_2 = gc.get_threshold()[1:]

    assert gc_tuning.gc_tune() is True

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (gc_tuning.GEN0_THRESHOLD, *generations_1_and_2)


def test_gc_tuning_off_keeps_the_defaults(settings):
    settings.GC_TUNING = False
    threshold = gc.get_threshold()

    assert gc_tuning.gc_tune(load_urls=True) is False

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


@pytest.fixture
def real_cluster(monkeypatch):
    """django-q2 as a qcluster runs it (the test settings run tasks inline)."""
    monkeypatch.setattr(Conf, "SYNC", False)


def test_a_spawned_qcluster_worker_tunes_its_collector(settings, real_cluster):
    settings.GC_TUNING = True

    post_spawn.send(sender="django_q", proc_name="Process-1:1")

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == gc_tuning.GEN0_THRESHOLD


def test_a_spawned_worker_keeps_the_defaults_when_tuning_is_off(settings, real_cluster):
    settings.GC_TUNING = False
    threshold = gc.get_threshold()

    post_spawn.send(sender="django_q", proc_name="Process-1:1")

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


def test_tasks_run_inline_do_not_tune_the_calling_process(settings, monkeypatch, db):
    """The sync broker sends post_spawn for every task in the caller: not a worker."""
    settings.GC_TUNING = True
    monkeypatch.setattr(Conf, "SYNC", True)
    threshold = gc.get_threshold()

    async_task("math.floor", 1.5)

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_the_web_entry_points_tune_after_building_the_handler(module, monkeypatch):
    calls = []
    monkeypatch.setattr(gc_tuning, "gc_tune", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delitem(sys.modules, module, raising=False)

    loaded = importlib.import_module(module)

    assert loaded.application is not None
    assert calls == [{"load_urls": True}]


def test_loading_the_urls_first_freezes_them_too(settings):
    from django.urls import get_resolver

    settings.GC_TUNING = True
    gc_tuning.gc_tune(load_urls=True)

    resolver = get_resolver()
    # Frozen objects leave the collected generations (gc.get_objects lists only those).
    assert all(tracked is not resolver for tracked in gc.get_objects())
