"""`manage.py sequence activate|pause|resume KEY`."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sequences.models import Sequence
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db


def status(key: str) -> str:
    return Sequence.objects.get(key=key).status


def test_activate_prints_the_review_and_activates(capsys, newsletter):
    build_sequence([email_step("hello")], key="welcome", activate=False)

    call_command("sequence", "activate", "welcome")

    out = capsys.readouterr().out
    assert "warning: No goal" in out
    assert "who enters (when form_submitted): Future behaviour only" in out
    assert "First email: step hello, right after entry." in out
    assert "welcome: active, version 1." in out
    assert status("welcome") == "active"


def test_activate_refuses_with_the_blockers_and_exit_code_1(capsys, newsletter):
    build_sequence([email_step("hello")], key="ownerless", activate=False, owner=None)

    with pytest.raises(CommandError) as error:
        call_command("sequence", "activate", "ownerless")

    assert "blocker: The sequence has no owner." in capsys.readouterr().err
    assert "1 blocker(s)" in str(error.value)
    assert error.value.returncode == 1
    assert status("ownerless") == "draft"


def test_pause_and_resume(capsys, newsletter):
    build_sequence([email_step("hello")], key="welcome")

    call_command("sequence", "pause", "welcome")
    paused = status("welcome")
    call_command("sequence", "resume", "welcome")

    assert paused == "paused"
    assert status("welcome") == "active"


def test_resuming_a_draft_is_refused(newsletter):
    build_sequence([email_step("hello")], key="drafty", activate=False)

    with pytest.raises(CommandError, match="cannot become active from draft"):
        call_command("sequence", "resume", "drafty")


def test_unknown_key_is_refused(db):
    with pytest.raises(CommandError, match="no sequence with key 'nope'"):
        call_command("sequence", "pause", "nope")
