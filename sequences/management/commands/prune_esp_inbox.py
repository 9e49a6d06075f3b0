"""Delete processed ESP inbox rows older than N days (docs/deliverability.md, Limits).

The rows are the replay defence: a deleted event key can be stored and acted on again,
so never keep less than the ESPs' retry windows (reliability.md §8, 21).
"""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sequences.models import EspEvent

DEFAULT_DAYS = 30  # the deliverability report and the breaker read 30 days
MINIMUM_DAYS = 7  # longer than every ESP's retry window


class Command(BaseCommand):
    help = "Delete processed ESP events older than --days (default 30, at least 7)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS)

    def handle(self, *args, days: int, **options):
        if days < MINIMUM_DAYS:
            raise CommandError(f"--days must be at least {MINIMUM_DAYS}: replays would pass.")
        deleted, _ = esp_inbox_prune(days)
        self.stdout.write(f"Deleted {deleted} ESP events older than {days} days.")


def esp_inbox_prune(days: int) -> tuple[int, dict]:
    """Pending events stay whatever their age: they have not acted yet."""
    cutoff = timezone.now() - datetime.timedelta(days=days)
    old = EspEvent.objects.filter(received_at__lt=cutoff)
    return old.exclude(outcome=EspEvent.Outcome.PENDING).delete()
