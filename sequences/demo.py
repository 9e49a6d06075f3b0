"""What seed_demo adds for sequences: every starter playbook, installed and active."""

from django.contrib.auth import get_user_model

from sequences.models import Sequence
from sequences.playbooks import PLAYBOOKS, playbook_install
from sequences.services import sequence_activate

DEMO_OWNER = "demo-marketing-1"


def install_demo_playbooks() -> str:
    """Install and activate each playbook once; later runs leave them as staff left them."""
    owner = get_user_model().objects.filter(username=DEMO_OWNER).first()
    installed = []
    for key, playbook in PLAYBOOKS.items():
        if Sequence.objects.filter(key=playbook["sequence"]["key"]).exists():
            continue
        sequence_activate(sequence=playbook_install(key=key, owner=owner), user=owner)
        installed.append(key)
    return f"{len(installed)} playbooks installed and active" if installed else "already present"
