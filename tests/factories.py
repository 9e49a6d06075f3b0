"""One factory per model. Factories write rows directly; tests of behaviour call services."""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from factory.django import DjangoModelFactory

from crm.emails import email_hash
from crm.models import (
    Activity,
    Company,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStage,
    LifecycleStageChange,
    Note,
    Suppression,
    Tag,
    Task,
)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@nextstep.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        if create:
            self.save()


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Faker("company")
    domain = factory.Sequence(lambda n: f"company{n}.example")
    size = Company.Size.SMALL
    industry = "Software"


class LifecycleStageFactory(DjangoModelFactory):
    class Meta:
        model = LifecycleStage
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"stage_{n}")
    name = factory.LazyAttribute(lambda stage: stage.key.replace("_", " ").capitalize())
    position = factory.Sequence(lambda n: 100 + n)


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "DE"
    country_source = Contact.CountrySource.DECLARED
    time_zone = "Europe/Berlin"
    lifecycle_stage_id = LifecycleStage.Key.NEW_LEAD.value


class LifecycleStageChangeFactory(DjangoModelFactory):
    class Meta:
        model = LifecycleStageChange

    contact = factory.SubFactory(ContactFactory)
    from_stage_id = LifecycleStage.Key.NEW_LEAD.value
    to_stage_id = LifecycleStage.Key.ENGAGED_LEAD.value
    source = "test"
    changed_at = factory.LazyFunction(timezone.now)


class ConsentTopicFactory(DjangoModelFactory):
    class Meta:
        model = ConsentTopic
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.LazyAttribute(lambda topic: topic.key.title())


class ConsentTextFactory(DjangoModelFactory):
    class Meta:
        model = ConsentText

    topic = factory.SubFactory(ConsentTopicFactory)
    version = factory.Sequence(lambda n: n + 1)
    text = factory.LazyAttribute(lambda text: f"Yes, email me about {text.topic.name}.")


class ConsentEntryFactory(DjangoModelFactory):
    class Meta:
        model = ConsentEntry

    contact = factory.SubFactory(ContactFactory)
    topic = factory.SubFactory(ConsentTopicFactory)
    is_granted = True
    email_at_time = factory.LazyAttribute(lambda entry: entry.contact.email)
    method = ConsentEntry.Method.FORM
    source = "test form"
    occurred_at = factory.LazyFunction(timezone.now)


class SuppressionFactory(DjangoModelFactory):
    class Meta:
        model = Suppression

    email = factory.Sequence(lambda n: f"suppressed{n}@example.com")
    email_hash = factory.LazyAttribute(lambda suppression: email_hash(suppression.email))
    reason = Suppression.Reason.MANUAL
    source = "test"


class DealStageFactory(DjangoModelFactory):
    class Meta:
        model = DealStage
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"deal-stage-{n}")
    name = factory.LazyAttribute(lambda stage: stage.key.title())
    position = factory.Sequence(lambda n: 100 + n)
    win_probability = 30


class DealFactory(DjangoModelFactory):
    class Meta:
        model = Deal

    name = factory.Sequence(lambda n: f"Deal {n}")
    contact = factory.SubFactory(ContactFactory)
    stage = factory.LazyFunction(lambda: DealStage.objects.get(key="qualification"))
    amount = 1000
    currency = "EUR"
    expected_close_on = factory.LazyFunction(
        lambda: timezone.localdate() + datetime.timedelta(days=30)
    )


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    kind = Activity.Kind.PAGE_VIEWED
    contact = factory.SubFactory(ContactFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    source = "test"
    properties = factory.LazyFunction(lambda: {"path": "/"})


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Call back #{n}")
    contact = factory.SubFactory(ContactFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=1))


class NoteFactory(DjangoModelFactory):
    class Meta:
        model = Note

    contact = factory.SubFactory(ContactFactory)
    body = factory.Faker("sentence")
