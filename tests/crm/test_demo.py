import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction

from crm.demo import SOURCE, demo_counts, demo_seed
from crm.models import (
    Activity,
    ConsentEntry,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStage,
    LifecycleStageChange,
    Suppression,
)
from crm.selectors import consent_latest_granted
from sequences.reports.demo import DEAL_NAME_PREFIX as REVENUE_DEMO_DEAL

SMALL = 60

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="class")
def seeded(django_db_setup, django_db_blocker):
    """Seed once for a whole class (seeding is the slow part), rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield demo_seed(contacts=SMALL)
        transaction.set_rollback(True)


@pytest.mark.usefixtures("seeded")
class TestSeededDemo:
    def test_demo_fills_every_lifecycle_stage_with_recorded_history(self):
        stages = set(Contact.objects.values_list("lifecycle_stage", flat=True))
        history = LifecycleStageChange.objects.filter(source=SOURCE)

        assert stages == set(LifecycleStage.Key.values)
        assert Contact.objects.count() == SMALL
        assert set(history.values_list("to_stage", flat=True)) >= set(LifecycleStage.Key.values) - {
            LifecycleStage.Key.SUBSCRIBER
        }

    def test_demo_records_every_activity_kind_and_anonymous_visitors(self):
        kinds = set(Activity.objects.values_list("kind", flat=True))

        assert set(Activity.Kind.values) <= kinds
        assert {"webinar_registered", "webinar_attended"} <= kinds
        assert Activity.objects.filter(contact=None).exclude(anonymous_id="").exists()
        assert Activity.objects.filter(source=SOURCE).count() > 1000

    def test_demo_has_deals_in_every_stage_and_lost_ones_say_why(self):
        stages = set(Deal.objects.values_list("stage__key", flat=True))

        assert stages == set(DealStage.objects.values_list("key", flat=True))
        assert not Deal.objects.filter(stage__key="lost", lost_reason="").exists()
        assert not Deal.objects.filter(stage__key="won", closed_at=None).exists()

    def test_demo_uses_every_suppression_reason_but_erasure(self):
        reasons = set(Suppression.objects.values_list("reason", flat=True))

        assert reasons == set(Suppression.Reason.values) - {Suppression.Reason.ERASED}
        assert not Suppression.objects.filter(reason="soft_bounce", expires_at=None).exists()

    def test_demo_consent_is_granted_withdrawn_or_never_asked_with_proof(self):
        newsletter = ConsentTopic.objects.get(key="newsletter")

        states = set(
            Contact.objects.annotate(state=consent_latest_granted(newsletter)).values_list(
                "state", flat=True
            )
        )
        grants = ConsentEntry.objects.filter(is_granted=True)

        assert states == {True, False, None}
        assert set(grants.values_list("method", flat=True)) == {"form", "double_opt_in", "import"}
        assert not grants.filter(consent_text=None).exists()
        assert not grants.exclude(method="import").filter(ip_address=None).exists()

    def test_demo_staff_are_in_their_roles_and_cannot_log_in_yet(self):
        staff = get_user_model().objects.filter(username__startswith="demo-")

        groups = set(staff.values_list("groups__name", flat=True))

        assert groups == {"Sales", "Marketing", "Customer success"}
        assert not any(user.has_usable_password() for user in staff)
        assert Contact.objects.exclude(owner=None).exists()
        assert not Deal.objects.filter(owner=None).exists()


def test_running_the_command_twice_keeps_every_count(capsys):
    call_command("seed_demo", contacts=SMALL)
    first = demo_counts()

    call_command("seed_demo", contacts=SMALL)

    assert demo_counts() == first
    assert "demo data already present" in capsys.readouterr().out


class _Rollback(Exception):
    pass


def _seed_and_roll_back() -> tuple[list, list]:
    """Seed inside a transaction that is thrown away, so each call starts from a fresh database."""
    try:
        with transaction.atomic():
            demo_seed(contacts=SMALL)
            emails = list(Contact.objects.order_by("email").values_list("email", flat=True))
            # The revenue demo's won deals follow its holdout, a hash of the contact's id,
            # and PostgreSQL does not hand out the same ids again after a rollback.
            people_deals = Deal.objects.exclude(name__startswith=REVENUE_DEMO_DEAL)
            deals = list(
                people_deals.order_by("name", "amount", "stage__key").values_list(
                    "name", "amount", "stage__key"
                )
            )
            raise _Rollback((emails, deals))
    except _Rollback as done:
        return done.args[0]


def test_two_fresh_runs_make_the_same_people_and_deals():
    first = _seed_and_roll_back()

    second = _seed_and_roll_back()

    assert Contact.objects.count() == 0
    assert first == second


def test_command_refuses_a_demo_too_small_to_show_every_stage():
    with pytest.raises(CommandError):
        call_command("seed_demo", contacts=5)
