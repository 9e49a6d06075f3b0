"""Apply a YAML configuration file: validate it all, then create or update by key."""

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from crm.config_io import ConfigInvalid, SectionSummary, config_import


class Command(BaseCommand):
    help = (
        "Import the configuration from FILE ('-' for standard input). Every section is "
        "validated before anything is written; objects missing from the file are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The YAML file written by export_config, or '-'.")
        parser.add_argument(
            "--user",
            help=(
                "Import as this staff user: every object created or changed needs the same "
                "add or change permission as in the admin. Without it, the import runs with "
                "the operator's full rights."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and report what would change, then write nothing.",
        )

    def handle(self, *args, file, dry_run=False, user=None, **options):
        importer = self._user(user) if user else None
        text = sys.stdin.read() if file == "-" else self._read(file)
        try:
            report = config_import(text, user=importer, dry_run=dry_run)
        except ConfigInvalid as exc:
            listed = "\n".join(f"  {error}" for error in exc.errors)
            raise CommandError(f"{file} is invalid; nothing was changed.\n{listed}") from exc
        for name, summary in report.sections.items():
            self.stdout.write(_summary_lines(name, summary))
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported {file}."))

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No active staff user {username!r}.")
        return user

    def _read(self, file: str) -> str:
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc


def _summary_lines(name: str, summary: SectionSummary) -> str:
    counts = (
        f"{name}: {len(summary.created)} created, {len(summary.updated)} updated, "
        f"{len(summary.unchanged)} unchanged"
    )
    details = [
        f"  {label}: {', '.join(keys)}"
        for label, keys in (
            ("created", summary.created),
            ("updated", summary.updated),
            ("not in file, kept", summary.kept),
        )
        if keys
    ]
    return "\n".join([counts, *details])
