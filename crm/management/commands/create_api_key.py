"""Create an API key and print it once; Nextstep keeps only its hash."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm.models import ApiKey
from crm.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key and print it once. Server keys use the whole API; browser keys "
        "may only send behaviour events and identify visitors, from the --origin sites."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who uses the key, e.g. Website or Shop backend.")
        parser.add_argument("--kind", choices=ApiKey.Kind.values, default=ApiKey.Kind.SERVER)
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="A site allowed to use a browser key, e.g. https://www.example.com "
            "(repeat for several).",
        )
        parser.add_argument(
            "--rate-limit", type=int, default=None, help="Requests per minute (default 600)."
        )

    def handle(self, *args, name, kind, origins, rate_limit, **options):
        try:
            created = api_key_create(
                name=name, kind=kind, allowed_origins=origins, rate_limit_per_minute=rate_limit
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        api_key = created.api_key
        self.stderr.write(
            f"Created {api_key.kind} key “{api_key.name}” "
            f"({api_key.display_prefix}). Copy it now: it is not shown again."
        )
        # The key alone on stdout, so scripts can capture it: KEY=$(manage.py create_api_key …)
        self.stdout.write(created.key)
