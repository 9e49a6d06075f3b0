"""`manage.py bench_worker JOB ...`: one time-boxed job of a bench run (internal).

Runs only under config.bench.settings, in the bench's own database. Prints one JSON
object per line, flushed, so a job cut off by its time box still reports what it did.
"""

import json
import os
import resource
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from config.gc_tuning import gc_tune


def emit(**values) -> None:
    print(json.dumps(values), flush=True)


class Command(BaseCommand):
    help = "Internal: one job of `manage.py bench` (send, evaluate, periodic, import, export)."

    def add_arguments(self, parser):
        parser.add_argument("job", choices=["send", "evaluate", "periodic", "export", "import_csv"])
        parser.add_argument("args", nargs="*", help="The job's arguments.")

    def handle(self, *args, job, **options):
        if not getattr(settings, "BENCH_DIR", ""):
            raise CommandError("bench_worker runs only inside `manage.py bench`.")
        # A long-running worker tunes its collector after start-up (config.gc_tuning):
        # so does this stand-in for one (GC_TUNING=0 measures without).
        gc_tune()
        getattr(self, job)(*args)

    def send(self, go_file: str, until: str) -> None:
        """Wait for the start signal, then sweep due enrollments until none is left.

        Warm, as a long-running qcluster worker is (a database connection, the mail
        backend imported), before the signal. A worker whose own sweep claimed nothing
        waits 50 ms before looking again, as a worker polling its queue would, and stops
        after two such sweeps: before, it looked again at once for as long as any other
        worker was still sending, so with more workers than batches the idle ones spun
        on claim queries and took the CPU from those sending.
        """
        from django.db import connection

        from sequences.tasks import due_enrollments_sweep

        connection.ensure_connection()
        import_string(settings.EMAIL_BACKEND)  # imported, not opened: the send path opens it
        Path(f"{go_file}.ready.{os.getpid()}").touch()
        while not Path(go_file).exists():
            time.sleep(0.005)
        claimed = sent = empty = 0
        began = time.process_time()
        while time.time() < float(until) and empty < 2:
            got, handed, _more = due_enrollments_sweep()
            claimed, sent = claimed + got, sent + handed
            empty = 0 if got else empty + 1
            if not got:
                time.sleep(0.05)
        emit(claimed=claimed, sent=sent, cpu=time.process_time() - began)

    def evaluate(self, *segment_pks: str) -> None:
        """Each segment's first full evaluation, one after the other."""
        from crm.models import Segment
        from crm.services.segments import segment_evaluate

        for pk in segment_pks:
            emit(item=pk, started=True)
            started = time.perf_counter()
            result = segment_evaluate(segment=Segment.objects.get(pk=int(pk)))
            emit(item=pk, members=result.member_count, seconds=time.perf_counter() - started)

    def periodic(self, *funcs: str) -> None:
        """Each periodic task's function, then the tasks it queued, one after the other.

        A schedule that fans out (decay queues one task per contact-id range) is done when
        its fan-out is: the tasks it queued run here, in order, and count in its time.
        """
        from django_q.signals import pre_enqueue

        queued: list[dict] = []

        def record(sender, task, **kwargs):
            queued.append(task)

        pre_enqueue.connect(record, dispatch_uid="bench_worker_periodic")
        for func in funcs:
            emit(item=func, started=True)
            queued.clear()
            started = time.perf_counter()
            outcome = import_string(func)()
            fanned_out, slowest = 0, 0.0
            while queued:
                task = queued.pop(0)
                fanned_out += 1
                name = task["func"]
                call = import_string(name) if isinstance(name, str) else name
                part_started = time.perf_counter()
                call(*task.get("args", ()), **task.get("kwargs", {}))
                slowest = max(slowest, time.perf_counter() - part_started)
                # Each part is its own task under the timeout: its time and how far the
                # fan-out got, so a run cut off still says how much was done.
                emit(
                    item=func,
                    progress=True,
                    parts_done=fanned_out,
                    parts=fanned_out + len(queued),
                    seconds=time.perf_counter() - started,
                    slowest_part=slowest,
                )
            emit(
                item=func,
                seconds=time.perf_counter() - started,
                outcome=str(outcome)[:200],
                fanned_out=fanned_out,
                slowest_part=slowest,
            )

    def import_csv(self, username: str, rows: str) -> None:
        """The admin's CSV import of `rows` new contacts (config.bench.scenarios.csv_import)."""
        from django.contrib.auth import get_user_model
        from django.test import Client

        from config.bench.scenarios.csv_import import import_csv

        emit(item=rows, started=True)
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        emit(item=rows, **import_csv(client, int(rows)))

    def export(self, username: str, query: str) -> None:
        """POST the contact changelist's CSV export as a logged-in superuser."""
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.urls import reverse

        from crm.imports import EXPORT_ONLY_COLUMNS, IMPORT_COLUMNS

        emit(item=query, started=True)
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        data = {"format": "0", "resource": "0"}
        data.update({f"contactresource_{c}": "on" for c in IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        response = client.post(reverse("admin:crm_contact_export") + query, data)
        first = time.perf_counter() - started
        lines = 0
        chunks = response.streaming_content if response.streaming else [response.content]
        for chunk in chunks:
            lines += chunk.count(b"\n")
        emit(
            item=query,
            status=response.status_code,
            rows=max(lines - 1, 0),
            seconds=time.perf_counter() - started,
            first_byte=first,
            streaming=bool(response.streaming),
            memory_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
        )
