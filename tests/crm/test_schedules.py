"""The schedule registry and `manage.py setup_schedules`."""

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django_q.models import Schedule

from crm.schedules import register_schedule, registered_schedules, unregister_schedule


@pytest.fixture
def extra_schedule():
    register_schedule("test: nightly", "tests.jobs.nightly", cron="0 3 * * *")
    yield
    unregister_schedule("test: nightly")


@pytest.mark.django_db
def test_setup_schedules_creates_each_registered_schedule_once():
    call_command("setup_schedules", stdout=io.StringIO())
    Schedule.objects.filter(name="scoring: apply score decay").update(minutes=5)

    call_command("setup_schedules", stdout=io.StringIO())

    names = sorted(Schedule.objects.values_list("name", flat=True))
    assert names == sorted(spec.name for spec in registered_schedules())
    decay = Schedule.objects.get(name="scoring: apply score decay")
    assert (decay.schedule_type, decay.minutes, decay.repeats) == (Schedule.MINUTES, 60, -1)


@pytest.mark.django_db
def test_cron_schedules_are_written_as_cron(extra_schedule):
    call_command("setup_schedules", stdout=io.StringIO())

    nightly = Schedule.objects.get(name="test: nightly")
    assert (nightly.schedule_type, nightly.cron) == (Schedule.CRON, "0 3 * * *")


@pytest.mark.parametrize(
    "arguments",
    [{}, {"minutes": 5, "cron": "* * * * *"}, {"minutes": 0}],
)
def test_a_schedule_needs_exactly_one_valid_rhythm(arguments):
    with pytest.raises(ImproperlyConfigured):
        register_schedule("test: broken", "tests.jobs.broken", **arguments)


def test_registering_a_name_again_differently_is_refused(extra_schedule):
    register_schedule("test: nightly", "tests.jobs.nightly", cron="0 3 * * *")

    with pytest.raises(ImproperlyConfigured):
        register_schedule("test: nightly", "tests.jobs.other", cron="0 3 * * *")
