"""Python's cyclic garbage collector tuned for long-running web and worker processes.

Measured (docs/performance.md, "Session 5: the garbage collector"): with CPython's
defaults a send batch spent ~20% of its CPU in the collector, nearly all of it in the
full (generation 2) passes that walk every long-lived object Django, the apps and the
URLconf created at start-up, although none of them is ever garbage. Two standard remedies
(CPython's `gc.freeze` documentation; Instagram's write-up):

- `gc.freeze()` once start-up is done: everything alive then moves to the permanent
  generation, which no collection walks. It is never freed, but it is what the process
  keeps for its whole life anyway (modules, classes, settings, URL patterns); a
  collection first, so start-up garbage is freed rather than frozen.
- A larger generation-0 threshold (GEN0_THRESHOLD container allocations instead of 700):
  a request or a batch allocates and frees tens of thousands of short-lived objects,
  which reference counting frees at once; the collector then only runs every
  GEN0_THRESHOLD net container allocations. What it still collects (reference cycles) waits
  at most that many allocations longer: a few MB at most.

`GC_TUNING=0` turns both off (settings.GC_TUNING): the process keeps CPython's defaults.
"""

from __future__ import annotations

import gc

from django.conf import settings

#: Net container allocations between generation-0 collections (CPython's default: 700).
GEN0_THRESHOLD = 50_000


def gc_tune(*, load_urls: bool = False) -> bool:
    """Freeze what start-up left alive and raise the generation-0 threshold.

    Call once per process, after Django is set up (and, for web processes, after the
    handler is built; `load_urls` imports the URLconf first so it is frozen too rather than
    loaded by the first request). Calling again only freezes what is alive by then.
    Returns whether it tuned (False when settings.GC_TUNING is off).
    """
    if not getattr(settings, "GC_TUNING", True):
        return False
    if load_urls:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (imports every urls module and view)
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
    return True


def on_worker_spawn(sender, proc_name: str = "", **kwargs) -> None:
    """django-q2's post_spawn: a qcluster worker process is up (forked from the cluster).

    With Q_CLUSTER["sync"] (the tests' broker) django-q2 runs every task inline through
    its worker function, which sends post_spawn in the calling process once per task:
    that process is not a worker, and a full collection per task would cost more than the
    tuning saves, so nothing happens there.
    """
    from django_q.conf import Conf

    if not Conf.SYNC:
        gc_tune()
