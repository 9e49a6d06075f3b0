"""The configuration of a bench data set, through the project's public paths.

`seed_demo` gives the topics, stages, deal stages, scoring and handoff rules and the
active playbooks a real install starts from. On top, one configuration file (the
`import_config` format) adds a bench sequence and a scoring rule on a kind of its
own, `bench_requested`, so the latency and send scenarios measure one known path
whatever the demo playbooks become.
"""

import io

from django.contrib.auth import get_user_model
from django.core.management import call_command

from crm.config_io import config_import
from sequences.models import Sequence
from sequences.services import sequence_activate

BENCH_KIND = "bench_requested"
BENCH_SEQUENCE = "bench-send"
ADMIN_USERNAME = "bench-admin"

BENCH_CONFIG = f"""
version: 1
scoring_rules:
  - key: bench-requested
    name: Bench request
    category: engagement
    activity_kind: {BENCH_KIND}
    points: 5
email_templates:
  - key: bench-email
    name: Bench email
    subject: Your next step
    html: >-
      <p>Hi {{{{ contact.first_name|default:"there" }}}},</p>
      <p>Here is the guide you asked for.</p>
      <p><a href="{{{{ cta_url }}}}" data-cta="button">{{{{ cta_label }}}}</a></p>
      <p style="font-size:12px">{{{{ postal_address }}}}<br>
      <a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a></p>
    cta_label: Read the guide
    cta_url: https://www.example.com/guide
    is_marketing: true
sequences:
  - key: {BENCH_SEQUENCE}
    name: Bench send
    topic: newsletter
    owner: {ADMIN_USERNAME}
    on_send_failure: continue
    holdout_percent: 0  # the bench measures sending: nobody is held out
    reenrollment: always
    triggers:
      - {{type: activity, activity_kind: {BENCH_KIND}, lifecycle_stage: "", conditions: []}}
    steps:
      - {{key: send, type: send_email, template: bench-email, config: {{}}}}
"""


def configure() -> None:
    """Migrate, seed the demo, add the bench sequence and an admin user."""
    quiet = io.StringIO()
    call_command("migrate", verbosity=0, interactive=False, stdout=quiet)
    call_command("seed_demo", contacts=40, verbosity=0, stdout=quiet)
    users = get_user_model().objects
    if not users.filter(username=ADMIN_USERNAME).exists():
        users.create_superuser(ADMIN_USERNAME, "bench-admin@example.com", "bench-admin-password")
    config_import(BENCH_CONFIG)
    sequence_activate(sequence=Sequence.objects.get(key=BENCH_SEQUENCE))
