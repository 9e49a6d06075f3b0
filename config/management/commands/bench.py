"""`manage.py bench`: measure Nextstep on its own generated data set (docs/performance.md)."""

import dataclasses
import shlex
import sys
import traceback
from importlib import import_module
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from config.bench.scales import SCALES, SCENARIOS, SIZES

#: Scenario names that are not valid module names.
MODULES = {"import": "csv_import", "export": "csv_export"}


class Command(BaseCommand):
    help = (
        "Build (or reuse) a generated data set in a separate database, run the performance "
        "scenarios on a copy of it, print a table, optionally write JSON and a chart. "
        "A missed target is reported, not an error."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=list(SCALES), default="quick")
        parser.add_argument(
            "--only", default="", help=f"Comma-separated scenarios: {', '.join(SCENARIOS)}."
        )
        parser.add_argument("--json", metavar="FILE", help="Write every figure as JSON.")
        parser.add_argument("--chart", metavar="FILE.png", help="Draw the scaling curves.")
        parser.add_argument("--markdown", metavar="FILE", help="Write the table as Markdown.")
        parser.add_argument(
            "--chart-from",
            metavar="JSON[,JSON]",
            help="Run nothing: draw --chart from earlier --json files (e.g. quick, 100k and 1m).",
        )
        parser.add_argument("--rebuild", action="store_true", help="Rebuild the data set.")
        parser.add_argument(
            "--budget",
            type=float,
            help="Seconds per time box instead of the scale's (e.g. a shorter look at 1m).",
        )
        parser.add_argument(
            "--build-only", action="store_true", help="Build (or check) the data sets, run nothing."
        )
        parser.add_argument(
            "--no-curve",
            action="store_true",
            help="Run the segment scenario on the scale's own data set only, not its smaller "
            "curve sizes (e.g. a 1m run when a 100k run already measured 10k and 100k).",
        )
        # Internal: the orchestrator re-runs this command inside the bench database.
        parser.add_argument("--inside", choices=["build", "migrate", "run"], help=argparse_hidden())
        parser.add_argument("--size", choices=list(SIZES), help=argparse_hidden())
        parser.add_argument("--fingerprint", help=argparse_hidden())
        parser.add_argument("--out", help=argparse_hidden())

    def handle(self, *args, **options):
        only = [name.strip() for name in options["only"].split(",") if name.strip()]
        unknown = set(only) - set(SCENARIOS)
        if unknown:
            raise CommandError(
                f"Unknown scenario(s): {', '.join(sorted(unknown))}. Known: {', '.join(SCENARIOS)}."
            )
        only = [name for name in SCENARIOS if name in only] if only else list(SCENARIOS)
        if options["inside"] == "build":
            return self.build(options)
        if options["inside"] == "migrate":
            return self.migrate_inside()
        if options["inside"] == "run":
            return self.run_inside(options, only)
        return self.orchestrate(options, only)

    def orchestrate(self, options, only):
        from config.bench import runner
        from config.bench.report import chart, from_json, markdown, table

        if options["chart_from"]:
            if not options["chart"]:
                raise CommandError("--chart-from needs --chart FILE.png to draw into.")
            figures = [f for name in options["chart_from"].split(",") for f in from_json(
                Path(name).read_text())]  # fmt: skip
            chart(figures, options["chart"])
            return self.say(f"drew {options['chart']}")
        scale = SCALES[options["scale"]]
        if options["no_curve"]:
            scale = dataclasses.replace(scale, segment_sizes=(scale.size,))
        run = runner.Runner(scale, only, options["rebuild"], self.say, options["budget"])
        if options["build_only"]:
            return run.build_only()
        figures = run.run()
        self.stdout.write(table(figures))
        info = runner.meta(scale, "manage.py bench " + shlex.join(sys.argv[2:]))
        if options["json"]:
            runner.write_json(options["json"], figures, info)
            self.say(f"wrote {options['json']}")
        if options["markdown"]:
            Path(options["markdown"]).write_text(markdown(figures, info))
            self.say(f"wrote {options['markdown']}")
        if options["chart"]:
            chart(figures, options["chart"])
            self.say(f"drew {options['chart']}")
        if run.failed:
            raise CommandError("a scenario crashed (see above); the figures shown are partial")

    def build(self, options):
        from config.bench import data, processes, setup

        size = SIZES[options["size"]]
        self.say(f"configuring {connection.settings_dict['NAME']}")
        setup.configure()
        data.generate(size.contacts, size.activities_per_contact, self.say)
        # What configuring queued (on commit) is not part of any scenario: a cached data set
        # starts with an empty queue, with either broker.
        processes.purge_queue()
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_dataset (fingerprint varchar(64), size varchar(20))")
            cursor.execute(
                "INSERT INTO bench_dataset VALUES (%s, %s)", [options["fingerprint"], size.label]
            )

    def migrate_inside(self):
        from django.core.management import call_command

        from config.bench import processes

        call_command("migrate", verbosity=0, interactive=False)
        # A data migration's on-commit tasks are not part of any scenario either.
        processes.purge_queue()

    def run_inside(self, options, only):
        from config.bench import processes
        from config.bench.context import Context
        from config.bench.report import to_json
        from config.gc_tuning import gc_tune

        scale = SCALES[options["scale"]]
        if options["budget"]:
            scale = dataclasses.replace(scale, budget=options["budget"])
        context = Context(scale=scale, size=SIZES[options["size"]])
        crashed = []
        processes.purge_queue()
        # The scenarios' POSTs run in this process as in a web process: its collector is
        # tuned the same way (config.gc_tuning; GC_TUNING=0 measures without). Not
        # load_urls, as config/wsgi.py does: the first POST still imports the URLconf
        # inside its timing either way, so GC_TUNING=0 and 1 compare only the collector.
        gc_tune()
        for name in only:
            module = import_module(f"config.bench.scenarios.{MODULES.get(name, name)}")
            context.say(f"{name} on {context.contacts:,} contacts")
            try:
                module.run(context)
            except Exception:
                traceback.print_exc()
                crashed.append(name)
                context.add(name, "crashed", "", None, note="the scenario raised; see the log")
            processes.purge_queue()
        with open(options["out"], "w") as out:
            out.write(to_json(context.figures, {}))
        if crashed:
            raise CommandError(f"crashed: {', '.join(crashed)}")

    def say(self, text: str) -> None:
        self.stderr.write(f"[bench] {text}")


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
