"""What seed_demo adds for sequences: every starter playbook, installed and active."""

from django.contrib.auth import get_user_model

from sequences.models import EmailTemplate, Sequence, Step
from sequences.playbooks import PLAYBOOKS, playbook_install
from sequences.services import sequence_activate

DEMO_OWNER = "demo-marketing-1"
#: The demo A/B-tests the subject line of this playbook's first email: a month of
#: orders gives each variant enough sends for the hourly task to name a winner.
SUBJECT_TEST_PLAYBOOK = "onboarding"
SUBJECT_TEST_STEP = "welcome"
SUBJECT_TEST_MIN_SAMPLE = 20


def install_demo_playbooks() -> str:
    """Install and activate each playbook once; later runs leave them as staff left them."""
    owner = get_user_model().objects.filter(username=DEMO_OWNER).first()
    installed = []
    for key, playbook in PLAYBOOKS.items():
        if Sequence.objects.filter(key=playbook["sequence"]["key"]).exists():
            continue
        sequence = playbook_install(key=key, owner=owner)
        if key == SUBJECT_TEST_PLAYBOOK:
            _add_subject_line_test(sequence)
        sequence_activate(sequence=sequence, user=owner)
        installed.append(key)
    return f"{len(installed)} playbooks installed and active" if installed else "already present"


def _add_subject_line_test(sequence: Sequence) -> None:
    """Split the first email 50/50 between its subject line and a more specific one."""
    step = Step.objects.get(sequence=sequence, key=SUBJECT_TEST_STEP)
    original = step.template
    variant = EmailTemplate.objects.get_or_create(
        key=f"{original.key}-b",
        defaults={
            "name": f"{original.name} (B: specific subject)",
            "subject": "Your account is ready: 3 steps, 5 minutes",
            "preheader": original.preheader,
            "html": original.html,
            "text": original.text,
            "cta_label": original.cta_label,
            "cta_url": original.cta_url,
            "blocks": original.blocks,
            "is_marketing": original.is_marketing,
        },
    )[0]
    step.config = {
        **step.config,
        "variants": [
            {"key": "a", "template": original.key, "split": 50},
            {"key": "b", "template": variant.key, "split": 50},
        ],
        "winner_by": "click",
        "min_sample": SUBJECT_TEST_MIN_SAMPLE,
    }
    step.save(update_fields=["config"])
