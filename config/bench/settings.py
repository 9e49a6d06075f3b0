"""Settings of every bench process: the project's own, pointed at a bench database.

Set by the bench for its child processes (DJANGO_SETTINGS_MODULE); never used otherwise.
The orchestrator starts children with DEBUG=1 so the static files storage and the
security redirects are those of a laptop; DEBUG itself is off here, so no query log
is kept and timings are those of production code paths.
"""

import os
import warnings

from config.settings import *  # noqa: F403
from config.settings import (
    ANYMAIL,
    DATABASE_URL,
    DATABASES,
    LOGGING,
    POSTAL_ADDRESS,
    Q_CLUSTER,
    SITE_URL,
)

_expected = os.environ.get("NEXTSTEP_BENCH_DATABASE_URL", "")
if not _expected or _expected != DATABASE_URL:
    # The guard that keeps a bench from ever writing to the user's database.
    raise RuntimeError("config.bench.settings is only for bench databases (run manage.py bench).")

DEBUG = False
# With DEBUG off the production checks apply (nextstep.E003/E004): give them what a
# production site has. Nothing is ever fetched from SITE_URL; it only appears in links.
POSTAL_ADDRESS = POSTAL_ADDRESS or "Nextstep Bench Ltd, 1 Bench Street, Benchtown"
SITE_URL = SITE_URL if SITE_URL.startswith("https://") else "https://bench.invalid"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
BENCH_DIR = os.environ["NEXTSTEP_BENCH_DIR"]
BENCH_TASK_LOG = os.path.join(BENCH_DIR, "tasks.log")
BENCH_MAIL_LOG = os.path.join(BENCH_DIR, "mail.log")
BENCH_WEBHOOK_SECRET = "bench:bench-webhook-secret"
EMAIL_BACKEND = "config.bench.mail.EmailBackend"
# The webhook scenario posts Postmark's payloads (one event per POST) and SendGrid's
# (batches); only configured ESPs' URLs are mounted.
ESP_WEBHOOKS = ["postmark", "sendgrid"]
ANYMAIL = {**ANYMAIL, "WEBHOOK_SECRET": BENCH_WEBHOOK_SECRET}
# Its own queue name: with REDIS_URL set, the bench's tasks never reach the user's workers,
# and two bench runs at once (another scale, another checkout) never take each other's
# tasks, which would run against the other run's database.
_run_database = os.path.basename(str(DATABASES["default"]["NAME"]))
Q_CLUSTER = {**Q_CLUSTER, "name": f"nextstep-bench-{_run_database}"}
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
# No collectstatic in a bench database's life: whitenoise need not say so on every request.
warnings.filterwarnings("ignore", message="No directory at")
