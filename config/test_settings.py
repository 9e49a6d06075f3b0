"""Test settings: only what the tests need to differ from production."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("SITE_URL", "https://nextstep.test")
os.environ.setdefault("POSTAL_ADDRESS", "Nextstep GmbH, Example Street 1, 10115 Berlin, Germany")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# The ESPs whose webhooks the tests post recorded payloads to.
# No holdout unless a test asks for one: most tests expect every contact mailed.
os.environ.setdefault("REPORT_DEFAULT_HOLDOUT_PERCENT", "0")
os.environ.setdefault("ESP_WEBHOOKS", "postmark,mailgun,sendgrid,amazon_ses")

from config.settings import *  # noqa: F403
from config.settings import Q_CLUSTER

# django-q2 reads Q_CLUSTER once at import (stack.md, pitfall 2): run tasks inline.
Q_CLUSTER["sync"] = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
