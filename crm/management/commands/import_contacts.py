"""Import contacts from a CSV file, as the admin's import does, without the preview.

Grants no consent: recording consent needs a person to confirm the wording, which the
admin's import form asks for.
"""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from crm.imports import _normalise_header, _read_row, import_totals_message, spreadsheet_row
from crm.services.imports import INVALID, ContactImportRow, contacts_import_batch


class Command(BaseCommand):
    help = "Import contacts from a CSV file (same columns and rules as the admin's import)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--source", required=True, help="Where these contacts come from (their entry point)."
        )

    def handle(self, *args, file: Path, source: str, **options):
        try:
            handle = file.open(encoding="utf-8-sig", newline="")
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        with handle:
            reader = csv.reader(handle)
            headers = [_normalise_header(header) for header in next(reader, [])]
            if "email" not in headers:
                raise CommandError("The file needs an 'email' column in its header row.")
            # A short row leaves the missing cells empty, as the admin's import does.
            rows = [
                ContactImportRow(
                    number=spreadsheet_row(index),
                    values=_read_row(dict(zip(headers, cells, strict=False))),
                )
                for index, cells in enumerate(reader, 1)
            ]
        result = contacts_import_batch(rows=rows, source=source[:200])
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
