"""The proof for "never lost, not only never twice" (issue #9, findings 21-26).

Real `manage.py qcluster` processes (two clusters, two workers each) run against the
test database while a stub Postmark on 127.0.0.1 refuses connections, answers 500,
answers too late (a read timeout after it accepted the message), and one worker is
SIGKILLed in the middle of an ESP request; then a whole cluster is SIGKILLed and a new
one started. In the end every due (contact, step) is exactly once `sent` or `failed`
with its reason, none is `unknown`, and the ESP accepted no message twice.

PostgreSQL only: SQLite serialises writers and is not what production runs.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from sequences.models import Enrollment, OutboundMessage
from tests.sequences.conftest import (
    build_sequence,
    bulk_consenting_contacts,
    bulk_due_enrollments,
    email_step,
)
from tests.sequences.esp_stub import EspStub

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 40
STEPS = ("hello", "follow")
#: An upper bound for a loaded machine; a normal run settles in about a minute.
SETTLE_SECONDS = 150
TICKER = """
import time, django
django.setup()
from django_q.tasks import async_task
tick = 0
while True:
    async_task("sequences.tasks.run_due_enrollments_task")
    if tick % 3 == 0:
        async_task("sequences.tasks.reconcile_unknown_messages_task")
    tick += 1
    time.sleep(1)
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the fault run needs PostgreSQL (row locks, SKIP LOCKED): CI runs it there",
    ),
]


def plan(recipient: str, attempt: int) -> str:
    """What the stub ESP does with each request, by contact number and attempt."""
    number = int(recipient.removeprefix("fault").split("@")[0])
    if number % 10 == 7:
        return "500"  # never accepted: fails after the retry budget
    if number % 10 == 3 and attempt == 1:
        return "500"  # accepted on the retry
    if number % 10 == 5 and attempt == 1:
        return "slow"  # accepted, but the answer comes after the client's read timeout
    return "accept"


def seed() -> None:
    sequence = build_sequence(
        [email_step(STEPS[0]), email_step(STEPS[1])], trigger=None, on_send_failure="continue"
    )
    contacts = bulk_consenting_contacts(
        CONTACTS, prefix="fault", topic=sequence.topic, at=timezone.now(), time_zone="UTC"
    )
    bulk_due_enrollments(contacts, sequence, step=STEPS[0], at=sequence.created_at)


def environment(stub: EspStub) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANYMAIL_", "DJANGO_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=url,
        SITE_URL="https://nextstep.test",
        POSTAL_ADDRESS="Nextstep GmbH, Example Street 1, 10115 Berlin, Germany",
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="fault-token",
        ANYMAIL_POSTMARK_API_URL=stub.url,
        ANYMAIL_REQUESTS_TIMEOUT="1.5",  # text, as the environment gives it (finding 23)
        Q_WORKERS="2",
        Q_TIMEOUT="10",  # leases of 40 s; a killed task's work comes free soon
        SEQUENCES_RETRY_BASE_SECONDS="1",
        SEQUENCES_QUIET_HOURS="00:00-00:00",  # never quiet: the run is not about the clock
        Q_LOG_LEVEL="ERROR",
    )
    return env


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    output = log.open("w")
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL the whole cluster at once
    )


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def pid_of_client(local_port: int, remote_port: int) -> int | None:
    """The process holding the TCP socket 127.0.0.1:local_port → 127.0.0.1:remote_port."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def wait_for(condition, seconds: float, what: str, logs: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{state_summary(logs)}")


def state_summary(logs: Path | None) -> str:
    """What had not settled, for the failure message: open rows, live enrollments, logs."""
    rows = OutboundMessage.objects.filter(state__in=["claimed", "retry", "unknown"])
    live = Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES)
    lines = [
        f"{row.contact.email if row.contact else row.pk} {row.step} {row.state} "
        f"attempts={row.attempts} "
        f"claimed_at={row.claimed_at} next={row.next_attempt_at} {row.reason}"
        for row in rows.select_related("contact")
    ]
    lines += [
        f"enrollment {e.pk} {e.state} at {e.current_step} due {e.due_at} "
        f"claimed by {e.claimed_by!r} until {e.claimed_until}"
        for e in live
    ]
    if logs is not None:
        lines += [p.read_text()[-1500:] for p in sorted(logs.glob("*.log"))]
    return "\n".join(lines)


def settled() -> bool:
    live = Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES).exists()
    open_rows = OutboundMessage.objects.filter(state__in=["claimed", "retry", "unknown"]).exists()
    return not live and not open_rows


@pytest.mark.django_db(transaction=True)
def test_crashes_and_a_failing_esp_lose_nothing_and_send_nothing_twice(tmp_path, default_rows):
    seed()
    stub = EspStub(plan=plan, slow_seconds=4)  # not listening: connections are refused
    env = environment(stub)
    processes = [
        start(["manage.py", "qcluster"], env, tmp_path / "cluster-a.log"),
        start(["manage.py", "qcluster"], env, tmp_path / "cluster-b.log"),
        start(["-c", TICKER], env, tmp_path / "ticker.log"),
    ]
    killed_worker = None
    try:
        # 1. The ESP refuses connections: the first attempts must be retried, not unknown.
        wait_for(
            lambda: OutboundMessage.objects.filter(
                state="retry", reason__startswith="could not connect"
            ).exists(),
            60,
            "a refused send",
        )
        assert not OutboundMessage.objects.filter(state="unknown").exists()
        stub.start()

        # 2. SIGKILL the worker that is inside a (slow) ESP request, mid-batch.
        client = wait_for(lambda: next(iter(dict(stub.in_flight)), None), 60, "a slow request")
        killed_worker = pid_of_client(client[1], stub.port)
        assert killed_worker is not None
        os.kill(killed_worker, signal.SIGKILL)

        # 3. SIGKILL a whole cluster and start a new one.
        kill_group(processes[0])
        processes[0] = start(["manage.py", "qcluster"], env, tmp_path / "cluster-c.log")

        wait_for(settled, SETTLE_SECONDS, "every enrollment and email to settle", tmp_path)
    finally:
        for process in processes:
            kill_group(process)
        stub.stop()
        connections.close_all()

    rows = list(OutboundMessage.objects.values_list("uuid", "contact__email", "step", "state"))
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("*.log")))
    assert len(rows) == CONTACTS * len(STEPS), logs  # one row per due (contact, step)
    assert {state for *_, state in rows} <= {"sent", "failed"}
    for uuid, email, step, state in rows:
        accepted = stub.accepted_count[str(uuid)]
        if state == "sent":
            assert accepted == 1, (email, step)  # exactly once, never twice
        else:
            assert accepted == 0, (email, step)
    failed = OutboundMessage.objects.filter(state="failed")
    assert set(failed.values_list("contact__email", flat=True)) == {
        f"fault{n}@example.com" for n in range(CONTACTS) if n % 10 == 7
    }
    assert all(
        reason.startswith("gave up after") for reason in failed.values_list("reason", flat=True)
    )
    assert max(stub.accepted_count.values()) == 1
    assert not Enrollment.objects.exclude(state="completed").exists()
    # The slow requests the stub accepted, including the killed worker's, were found again.
    assert OutboundMessage.objects.filter(resolution="esp_lookup").exists()
