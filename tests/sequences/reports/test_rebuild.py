"""manage.py reports_rebuild counts the history again to the same figures as the live counts."""

import pytest
from django.core.management import call_command

from sequences.reports.models import Conversion, ReportCount
from tests.sequences.conftest import run
from tests.sequences.reports.conftest import esp

pytestmark = pytest.mark.django_db


def counts() -> set[tuple]:
    return set(
        ReportCount.objects.exclude(count=0, amount_minor=0).values_list(
            "day",
            "sequence_pk",
            "version_pk",
            "step",
            "variant",
            "cohort",
            "metric",
            "count",
            "amount_minor",
        )
    )


def test_a_rebuild_gives_the_same_counts_as_live_counting(mailed, record, clock, capsys):
    sequence, contact, hello = mailed
    esp(record, contact, "email_delivered", hello)
    esp(record, contact, "email_opened", hello, is_machine_open=True)
    esp(record, contact, "email_clicked", hello)
    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")
    clock.advance(days=2, minutes=1)
    run(clock)
    record(contact, "order_placed", order_id="A2", total="12.50", currency="EUR")
    record(contact, "order_refunded", order_id="A1")
    live = counts()

    call_command("reports_rebuild")

    rebuilt = counts()
    assert rebuilt - live == set(), str((sorted(rebuilt - live), sorted(live - rebuilt)))
    assert live - rebuilt == set()
    assert Conversion.objects.filter(reversed_at__isnull=False).count() == 1
    assert "Rebuilt the reports" in capsys.readouterr().out
