"""manage.py reports_rebuild: count every report figure again from the history."""

from django.core.management.base import BaseCommand

from sequences.reports.rebuild import CHUNK, reports_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the revenue reports (facts and daily aggregates) from enrollments, the send "
        "ledger and activities. Stop the workers first (docs/reporting.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk", type=int, default=CHUNK, help="Rows per batch.")

    def handle(self, *args, chunk, **options):
        result = reports_rebuild(chunk=chunk)
        self.stdout.write(
            f"Rebuilt the reports from {result['enrollments']} enrollments and "
            f"{result['activities']} activities."
        )
