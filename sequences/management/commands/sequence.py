"""`manage.py sequence activate|pause|resume KEY`: the admin's status changes, from a shell.

Running the command is the confirmation. Activation prints the same review as the admin's
Activate page and refuses (exit code 1) while the review has blockers.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sequences.models import Sequence
from sequences.services import (
    sequence_activate,
    sequence_activation_review,
    sequence_pause,
    sequence_resume,
)


class Command(BaseCommand):
    help = "Activate (after the quality review), pause or resume a sequence by key."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["activate", "pause", "resume"])
        parser.add_argument("key", help="The sequence's key.")

    def handle(self, *args, verb: str, key: str, **options):
        sequence = Sequence.objects.filter(key=key).first()
        if sequence is None:
            raise CommandError(f"There is no sequence with key {key!r}.")
        try:
            if verb == "activate":
                self._activate(sequence)
            else:
                service = sequence_pause if verb == "pause" else sequence_resume
                sequence = service(sequence=sequence)
                self.stdout.write(self.style.SUCCESS(f"{key}: {sequence.status}."))
        except ValidationError as exc:
            raise CommandError(f"{key}: not changed: {'; '.join(exc.messages)}") from None

    def _activate(self, sequence: Sequence) -> None:
        review = sequence_activation_review(sequence=sequence)
        for finding in review.warnings:
            self.stdout.write(f"warning: {finding.message}")
        if review.blockers:
            for message in review.blockers:
                self.stderr.write(f"blocker: {message}")
            raise CommandError(
                f"{sequence.key}: not activated: the review found {len(review.blockers)} "
                "blocker(s)."
            )
        for entry in review.entries:
            self.stdout.write(f"who enters ({entry.trigger}): {entry.explanation}")
        self.stdout.write(review.first_send)
        if review.quiet_hours:
            self.stdout.write(review.quiet_hours)
        version = sequence_activate(sequence=sequence)
        self.stdout.write(self.style.SUCCESS(f"{sequence.key}: active, version {version.number}."))
