"""Nextstep settings, read from environment variables only.

The README lists every variable. Defaults give a working laptop set-up (SQLite,
django-q2's ORM broker, anymail's console backend); production sets
DATABASE_URL, REDIS_URL, SECRET_KEY and an ESP.
"""

import datetime
import ipaddress
import os
import sys
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    anymail_settings,
    env_bool,
    env_int,
    env_list,
    site_url,
    webhook_esps_for,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Unset: http://HOST:PORT, the address `make run` serves (config.env.site_url).
SITE_URL = site_url()

INSTALLED_APPS = [
    # django.contrib.admin with the role-aware home and Reports (crm/admin_site.py).
    "config.admin_apps.NextstepAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_q",
    "anymail",
    "crm",
    "crm.predictions",
    "scoring",
    "sequences",
    "sequences.reports",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# --- Database -----------------------------------------------------------------
# SQLite by default. WAL + IMMEDIATE transactions + a busy timeout let the web
# process and the django-q2 worker write at once without "database is locked".
# PostgreSQL keeps connections open: django-q2 closes "old" connections on every
# enqueue, so without CONN_MAX_AGE each task would reconnect (stack.md, pitfall 4).
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_database = dj_database_url.parse(DATABASE_URL)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif _database["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: at 1M contacts it spent seconds compiling segment counts that run in
    # under one. A statement timeout ends queries whose client is gone (a killed
    # gunicorn worker's query ran on): web requests get DB_STATEMENT_TIMEOUT_MS, the
    # qcluster worker DB_WORKER_STATEMENT_TIMEOUT_MS (default: its task timeout), and
    # other commands (migrate, imports, bench) none. 0 switches a limit off.
    _command = sys.argv[1] if len(sys.argv) > 1 and Path(sys.argv[0]).name == "manage.py" else ""
    if _command == "qcluster":
        _statement_timeout = env_int(
            "DB_WORKER_STATEMENT_TIMEOUT_MS", env_int("Q_TIMEOUT", 120) * 1000
        )
    elif _command and _command != "runserver":
        _statement_timeout = 0
    else:
        _statement_timeout = env_int("DB_STATEMENT_TIMEOUT_MS", 30_000)
    _options = _database.setdefault("OPTIONS", {})
    _options["options"] = " ".join(
        part
        for part in (
            _options.get("options", ""),
            "-c jit=off",
            f"-c statement_timeout={_statement_timeout}",
        )
        if part
    )
# Persistent connections for both: django-q2 closes "old" connections on every enqueue,
# and closing the last SQLite connection checkpoints the WAL file (slow).
_database["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 600)
_database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production) ----------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Email (anymail) ----------------------------------------------------------
# Every ANYMAIL_<NAME> env var lands here as NAME (e.g. ANYMAIL_POSTMARK_SERVER_TOKEN,
# ANYMAIL_POSTMARK_API_URL for a sandbox, ANYMAIL_WEBHOOK_SECRET).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "anymail.backends.console.EmailBackend")
ANYMAIL = anymail_settings()
# The ESPs whose tracking webhook is mounted at /anymail/<esp>/tracking/: by default the
# one EMAIL_BACKEND sends through (none for the console and test backends).
ESP_WEBHOOKS = env_list("ESP_WEBHOOKS", webhook_esps_for(EMAIL_BACKEND))
# SNS topics whose SES events we accept (sequences/esp/sns.py); anymail checks none.
SES_SNS_TOPIC_ARNS = env_list("SES_SNS_TOPIC_ARNS", [])
SES_SNS_VERIFY_SIGNATURES = env_bool("SES_SNS_VERIFY_SIGNATURES", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Nextstep <hello@example.com>")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
POSTAL_ADDRESS = os.environ.get("POSTAL_ADDRESS", "")
# Keys the hash suppressions are stored under (crm.emails.email_hash). It must stay
# the same for the life of the install, so it is separate from SECRET_KEY, which
# may be rotated; it falls back to SECRET_KEY when unset.
SUPPRESSION_HASH_KEY = os.environ.get("SUPPRESSION_HASH_KEY", SECRET_KEY)

# --- Sequences ----------------------------------------------------------------
# At most this many marketing emails per contact per 7 days (transactional exempt).
SEQUENCES_FREQUENCY_CAP = env_int("SEQUENCES_FREQUENCY_CAP", 3)
# Contacts with no engagement for this many days get at most one marketing email per
# SEQUENCES_LOW_ENGAGEMENT_INTERVAL_DAYS (the send gate's low-engagement throttle).
SEQUENCES_LOW_ENGAGEMENT_DAYS = env_int("SEQUENCES_LOW_ENGAGEMENT_DAYS", 90)
SEQUENCES_LOW_ENGAGEMENT_INTERVAL_DAYS = env_int("SEQUENCES_LOW_ENGAGEMENT_INTERVAL_DAYS", 14)
# No marketing sends in these hours of the contact's own time zone; deferred to the end.
SEQUENCES_QUIET_HOURS = os.environ.get("SEQUENCES_QUIET_HOURS", "21:00-08:00")
# Optional mailto address added to List-Unsubscribe beside the one-click HTTPS URL.
SEQUENCES_UNSUBSCRIBE_MAILTO = os.environ.get("SEQUENCES_UNSUBSCRIBE_MAILTO", "")
# Rising intent (docs/predictions.md): flag a contact whose engagement points in the last
# 7 days reach at least SCORING_INTENT_MIN_POINTS and SCORING_INTENT_RATIO times their own
# weekly mean over the 8 weeks before.
SCORING_INTENT_MIN_POINTS = env_int("SCORING_INTENT_MIN_POINTS", 30)
try:
    SCORING_INTENT_RATIO = float(os.environ.get("SCORING_INTENT_RATIO", "3"))
except ValueError:
    raise ImproperlyConfigured("SCORING_INTENT_RATIO must be a number, e.g. 3 or 2.5.") from None
# Retries of a 429/5xx or of a message the ESP never got wait about 1, 2, 4, 8 times this.
SEQUENCES_RETRY_BASE_SECONDS = env_int("SEQUENCES_RETRY_BASE_SECONDS", 60)
# Emails per committed hand-off to the ESP (sequences/services/sending.py): 1 (default)
# leaves at most the message in flight `unknown` when a worker is killed; 0 hands a whole
# batch over in one statement (fewer round trips; a killed worker leaves the batch unknown).
SEQUENCES_HAND_OFF_GROUP = env_int("SEQUENCES_HAND_OFF_GROUP", 1)
# Owners are alerted (once a day) when this many sent emails are `unknown`; 0: never.
SEQUENCES_UNKNOWN_ALERT_THRESHOLD = env_int("SEQUENCES_UNKNOWN_ALERT_THRESHOLD", 10)

# --- Reports (docs/reporting.md) ----------------------------------------------
# Revenue is reported in one currency; other currencies convert at fixed rates given
# as "CODE=rate" pairs meaning 1 CODE = rate REPORT_CURRENCY (e.g. "USD=0.92,GBP=1.17").
REPORT_CURRENCY = os.environ.get("REPORT_CURRENCY", "EUR").strip().upper()
REPORT_CURRENCY_RATES = os.environ.get("REPORT_CURRENCY_RATES", "")
# Activity kinds that are orders (with `total` and `currency`) and refunds of them.
REPORT_ORDER_KINDS = env_list("REPORT_ORDER_KINDS", ["order_placed"])
REPORT_REFUND_KINDS = env_list("REPORT_REFUND_KINDS", ["order_refunded"])
# Touch attribution: the last click this many days before a conversion gets the credit;
# with REPORT_ATTRIBUTE_OPENS, else the last human open within REPORT_OPEN_WINDOW_DAYS.
REPORT_CLICK_WINDOW_DAYS = env_int("REPORT_CLICK_WINDOW_DAYS", 5)
REPORT_ATTRIBUTE_OPENS = env_bool("REPORT_ATTRIBUTE_OPENS", False)
REPORT_OPEN_WINDOW_DAYS = env_int("REPORT_OPEN_WINDOW_DAYS", 1)
# A conversion counts for every sequence the contact entered this many days before it.
REPORT_CONVERSION_WINDOW_DAYS = env_int("REPORT_CONVERSION_WINDOW_DAYS", 30)
# A second order within this many days of the previous one is a repeat purchase.
REPORT_REPEAT_DAYS = env_int("REPORT_REPEAT_DAYS", 90)
# The holdout share (percent, 0-50) a new sequence starts with.
REPORT_DEFAULT_HOLDOUT_PERCENT = env_int("REPORT_DEFAULT_HOLDOUT_PERCENT", 10)

# --- Public pages (docs/privacy.md) -------------------------------------------
# What a one-click unsubscribe withdraws: "topic" (the email's topic) or "all" marketing.
UNSUBSCRIBE_SCOPE = os.environ.get("UNSUBSCRIBE_SCOPE", "topic")
# How long preference-centre links and sign-up confirmation links work.
PREFERENCES_TOKEN_MAX_AGE_DAYS = env_int("PREFERENCES_TOKEN_MAX_AGE_DAYS", 90)
OPT_IN_TOKEN_MAX_AGE_DAYS = env_int("OPT_IN_TOKEN_MAX_AGE_DAYS", 30)
# The consent topic of /subscribe/ when the form does not name one.
SIGN_UP_DEFAULT_TOPIC = os.environ.get("SIGN_UP_DEFAULT_TOPIC", "newsletter")

# --- Deliverability (docs/deliverability.md) ------------------------------------
# This many soft bounces (distinct messages) within the days suppress for a cool-down.
DELIVERABILITY_SOFT_BOUNCE_LIMIT = env_int("DELIVERABILITY_SOFT_BOUNCE_LIMIT", 3)
DELIVERABILITY_SOFT_BOUNCE_DAYS = env_int("DELIVERABILITY_SOFT_BOUNCE_DAYS", 30)
DELIVERABILITY_SOFT_BOUNCE_COOLDOWN_DAYS = env_int("DELIVERABILITY_SOFT_BOUNCE_COOLDOWN_DAYS", 30)
# Circuit breaker: rates in basis points (30 = 0.3%) over a window of hours.
DELIVERABILITY_BREAKER_COMPLAINT_BPS = env_int("DELIVERABILITY_BREAKER_COMPLAINT_BPS", 30)
# Gmail/Yahoo warn level: at 0.1% the owners are alerted (once per domain per day), no pause.
DELIVERABILITY_WARN_COMPLAINT_BPS = env_int("DELIVERABILITY_WARN_COMPLAINT_BPS", 10)
DELIVERABILITY_BREAKER_HARD_BOUNCE_BPS = env_int("DELIVERABILITY_BREAKER_HARD_BOUNCE_BPS", 500)
DELIVERABILITY_BREAKER_WINDOW_HOURS = env_int("DELIVERABILITY_BREAKER_WINDOW_HOURS", 24)
DELIVERABILITY_BREAKER_MIN_SENT = env_int("DELIVERABILITY_BREAKER_MIN_SENT", 200)
# Sunset: no engagement for this many days, and a marketing email at least the grace
# days ago left unanswered, suppresses the address as `inactive`.
DELIVERABILITY_SUNSET_DAYS = env_int("DELIVERABILITY_SUNSET_DAYS", 180)
DELIVERABILITY_SUNSET_GRACE_DAYS = env_int("DELIVERABILITY_SUNSET_GRACE_DAYS", 14)

# --- Background work (django-q2) ----------------------------------------------
# REDIS_URL switches the broker from the database to Redis. docs/operations.md,
# "Background tasks", explains the sizes below. The ORM broker hands a task out again
# `retry` seconds after it was fetched, and a cluster fetches up to `queue_limit` tasks
# into its local queue before a worker is free for them; so `retry` must outlast the
# wait in that queue as well as the run: (queue_limit + 1) / workers tasks ahead, each
# up to `timeout`, then the task itself. The local queue is kept short (one waiting task
# per worker) so that `retry` stays minutes, not hours.
# Sequence claims last the timeout plus a margin (sequences/services/moves.py), so no
# Q_TIMEOUT can let two workers own an enrollment.
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_WORKERS = env_int("Q_WORKERS", 2)
Q_TIMEOUT = env_int("Q_TIMEOUT", 120)
if Q_WORKERS < 1 or Q_TIMEOUT < 10:
    raise ImproperlyConfigured(
        f"Q_WORKERS={Q_WORKERS} must be 1 or more and Q_TIMEOUT={Q_TIMEOUT} at least 10 seconds."
    )
Q_QUEUE_LIMIT = Q_WORKERS
Q_RETRY = Q_TIMEOUT * (-(-(Q_QUEUE_LIMIT + 1) // Q_WORKERS) + 1) + 30
Q_CLUSTER = {
    "name": "nextstep",
    "workers": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    # Keep failures only. With save_limit > 0 django-q2's single monitor process
    # SELECT ... FOR UPDATE-s the saved success rows for every finished task: measured,
    # ~1.6 results/s, and the whole cluster stalled behind it (stack.md, measured
    # pitfalls). Failures stay in the admin; a success leaves its outcome in the logs.
    "save_limit": -1,
    "queue_limit": Q_QUEUE_LIMIT,
    "label": "Background tasks",
}
# Web processes (config/wsgi.py, asgi.py), qcluster workers and the bench's processes
# freeze start-up's objects out of the garbage collector and collect generation 0 less
# often (config.gc_tuning, docs/operations.md). 0 keeps CPython's defaults.
GC_TUNING = env_bool("GC_TUNING", True)
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.2

# --- API ----------------------------------------------------------------------
# Every endpoint needs an API key (Authorization: Bearer ns_live_...) and is rate
# limited per key at the key's own rate; errors share one JSON shape (crm.api.errors),
# which the schema documents on every operation (crm.api.schema).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "crm.api.schema.ApiAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.ApiCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_AUTHENTICATION_CLASSES": ["crm.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["crm.api.permissions.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["crm.api.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "crm.api.errors.api_exception_handler",
}
# The largest request body the API takes (a 1,000-event batch fits easily). Django reads
# every body through DATA_UPLOAD_MAX_MEMORY_SIZE, DRF's JSON parser included, so the two
# are one number: otherwise a batch under the documented limit gets Django's HTML 400.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# Custom event kinds a public browser key may send besides page behaviour (comma list,
# e.g. "video_played,pricing_calculated"). Business events always need a server key.
API_BROWSER_EVENT_KINDS = env_list("API_BROWSER_EVENT_KINDS", [])
SPECTACULAR_SETTINGS = {
    "TITLE": "Nextstep API",
    "DESCRIPTION": "Send behaviour, identify people and read the CRM.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"EventStatusEnum": "crm.api.serializers.EVENT_STATUSES"},
    # Serve Swagger UI from our own static files, not a CDN: works offline and behind CSPs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Rate-limit counters live in the cache. Without REDIS_URL that is Django's
# per-process memory cache (each web process counts on its own); with it, Redis,
# shared by every process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nextstep",
        }
    }

# --- Admin data tools ---------------------------------------------------------
# We escape spreadsheet formulas ourselves (crm.spreadsheets) for every export:
# django-import-export's own switch only strips a leading "=".
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django-q": {"level": os.environ.get("Q_LOG_LEVEL", "WARNING")}},
}

# --- Proxies and public rate limits (docs/security.md) ----------------------------
# Behind a reverse proxy REMOTE_ADDR is the proxy's. Name the proxies (addresses or
# networks, e.g. "10.0.0.0/8,127.0.0.1") or say how many append to X-Forwarded-For;
# crm.client_ip then takes the right-most address that is not a proxy. Neither set:
# X-Forwarded-For is ignored (anyone can write it).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)."
        ) from None
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
# Requests per client IP (IPv6: per /64) per minute on the public pages. Sign-up
# counts only submissions (POST); page views do not spend it.
PUBLIC_RATE_LIMITS = {
    "unsubscribe": env_int("PUBLIC_RATE_LIMIT_UNSUBSCRIBE", 60),
    "preferences": env_int("PUBLIC_RATE_LIMIT_PREFERENCES", 30),
    "subscribe": env_int("PUBLIC_RATE_LIMIT_SUBSCRIBE", 10),
    "subscribe_confirm": env_int("PUBLIC_RATE_LIMIT_SUBSCRIBE_CONFIRM", 30),
}

# --- Login throttling (django-axes; docs/security.md) -----------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username from one client address,
# that pair is locked out for AXES_COOLOFF_MINUTES (429 with a message); a correct
# password before then resets the count. Attempts are kept in the database, so every
# web process sees them. `manage.py axes_reset` lifts lockouts by hand.
INSTALLED_APPS += ["axes"]
# Last, as django-axes requires: it turns its lockout signal into the 429 response.
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The same client address as the public rate limits (TRUSTED_PROXY_COUNT/TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "crm.client_ip.client_ip_for_axes"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"

# --- Quiet hours: "off" and a check of the format (docs/sequences.md) ---------------
# SEQUENCES_QUIET_HOURS=off (or none, or empty) turns quiet hours off: an empty window,
# which the send gate never finds "now" inside. Anything else must be HH:MM-HH:MM.
if SEQUENCES_QUIET_HOURS.strip().lower() in {"off", "none", "no", "0", ""}:
    SEQUENCES_QUIET_HOURS = "00:00-00:00"
else:
    try:
        _start, _end = (
            datetime.time.fromisoformat(part.strip()) for part in SEQUENCES_QUIET_HOURS.split("-")
        )
    except ValueError:
        raise ImproperlyConfigured(
            f"SEQUENCES_QUIET_HOURS={SEQUENCES_QUIET_HOURS!r}: use HH:MM-HH:MM (e.g. "
            "21:00-08:00, in each contact's own time zone) or off."
        ) from None

# --- Content-Security-Policy (django-csp; docs/security.md) -------------------------
# Scripts only from our own origin or carrying this response's nonce: an injected
# <script> or onerror= never runs. Styles may be inline (the admin and our pages use
# style attributes; CSS cannot run code), images may come from any https origin (an
# email preview shows the email's images). CSP_REPORT_ONLY=1 reports instead of blocking.
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
# ESP webhook POSTs skip everything below (sequences/webhook_middleware.py): nothing in
# it does anything for them, and it was about a fifth of each POST's CPU.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "sequences.webhook_middleware.EspWebhookMiddleware",
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("csp.context_processors.nonce")
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": [
            "'self'",
            NONCE,
            # django-import-export's export page has one inline handler,
            # onchange="onSelectToggleChange(event)": allowed by its hash, nothing else.
            "'unsafe-hashes'",
            "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='",
        ],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
