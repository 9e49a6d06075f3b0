"""`manage.py seed_demo`: load the deterministic demo data set, once."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError

from crm.demo import DEFAULT_CONTACTS, MIN_CONTACTS, demo_seed


class Command(BaseCommand):
    help = (
        "Load a deterministic demo: contacts across companies in every lifecycle stage, "
        "consent, suppressions, deals, tasks, notes and ~90 days of activities. "
        "Does nothing when the demo is already there."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--contacts",
            type=int,
            default=DEFAULT_CONTACTS,
            help=f"How many contacts to create (default {DEFAULT_CONTACTS}, "
            f"at least {MIN_CONTACTS}).",
        )

    def handle(self, *args, contacts: int, **options):
        if contacts < MIN_CONTACTS:
            raise CommandError(f"--contacts must be at least {MIN_CONTACTS}.")
        started = time.monotonic()
        # The replay hands off leads and sends emails by the hundred; their INFO log lines
        # would bury the progress lines.
        logging.disable(logging.INFO)
        try:
            result = demo_seed(contacts=contacts, progress=self.stdout.write)
        finally:
            logging.disable(logging.NOTSET)
        if result.created:
            seconds = time.monotonic() - started
            self.stdout.write(self.style.SUCCESS(f"Demo data created in {seconds:.1f} s."))
        else:
            self.stdout.write("demo data already present; nothing written.")
        for name, count in result.counts.items():
            self.stdout.write(f"  {name}: {count}")
        for note in result.extensions:
            self.stdout.write(f"  {note}")
