"""Write the configuration (topics, stages and every registered section) as one YAML file."""

from pathlib import Path

from django.core.management.base import BaseCommand

from crm.config_io import config_export


class Command(BaseCommand):
    help = "Export the configuration as YAML to FILE, or to standard output without one."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="Where to write; standard output if left out.")

    def handle(self, *args, file=None, **options):
        text = config_export()
        if file is None:
            self.stdout.write(text, ending="")
            return
        Path(file).write_text(text, encoding="utf-8")
        self.stderr.write(f"Wrote the configuration to {file}.")
