"""Import contacts from a CSV file, as the admin's import does, without the preview.

Grants no consent: recording consent needs a person to confirm the wording, which the
admin's import form asks for.
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from crm.imports import import_totals_message
from crm.services.imports import INVALID, contact_import_csv_read, contacts_import_batch


class Command(BaseCommand):
    help = "Import contacts from a CSV file (same columns and rules as the admin's import)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--source", required=True, help="Where these contacts come from (their entry point)."
        )

    def handle(self, *args, file: Path, source: str, **options):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise CommandError(f"{file} is not UTF-8 text: {error}") from error
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        try:
            read = contact_import_csv_read(text)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        result = contacts_import_batch(rows=read.rows, source=source[:200])
        for outcome in result.outcomes:
            if outcome.status == INVALID:
                reasons = " ".join(
                    f"{column}: {message}"
                    for column, messages in outcome.errors.items()
                    for message in messages
                )
                self.stderr.write(f"row {outcome.number}: {reasons}")
        invalid = result.count(INVALID)
        self.stdout.write(
            import_totals_message(
                {
                    "new": result.count("new"),
                    "update": result.count("update"),
                    "skip": result.count("skip"),
                }
            )
            + ngettext(" %(count)d row not imported.", " %(count)d rows not imported.", invalid)
            % {"count": invalid}
        )
