import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import Contact, LifecycleStage
from crm.services import contact_update, contact_upsert
from tests.factories import CompanyFactory, ContactFactory, UserFactory


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["Ann@Example.COM", "  ann@example.com ", "ANN@EXAMPLE.COM\t"])
def test_upsert_finds_the_contact_whatever_the_case_or_spaces(typed):
    first = contact_upsert(email="ann@example.com", first_name="Ann", source="form")

    again = contact_upsert(email=typed, last_name="Lee")

    assert first.created and not again.created
    assert again.contact.pk == first.contact.pk
    assert Contact.objects.count() == 1
    assert again.contact.email == "ann@example.com"
    assert again.contact.last_name == "Lee"


@pytest.mark.django_db
def test_two_contacts_differing_only_in_case_cannot_both_exist_even_bypassing_services():
    ContactFactory(email="bob@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.bulk_create([Contact(email="BOB@example.com")])
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(email=" bob@example.com ")


@pytest.mark.django_db
def test_lookup_by_any_spelling_finds_the_normalised_address():
    contact = ContactFactory(email="carol@example.com")

    assert Contact.objects.get(email="  Carol@Example.com ") == contact


@pytest.mark.django_db
def test_upsert_keeps_first_touch_attribution_and_merges_properties():
    contact_upsert(
        email="dan@example.com",
        source="guide",
        entry_point="seo-guide",
        utm_source="google",
        properties={"plan": "free", "seats": 1},
    )

    result = contact_upsert(
        email="dan@example.com",
        source="form",
        entry_point="pricing",
        utm_source="newsletter",
        properties={"seats": 5},
    )

    contact = result.contact
    assert (contact.source, contact.entry_point, contact.utm_source) == (
        "guide",
        "seo-guide",
        "google",
    )
    assert contact.properties == {"plan": "free", "seats": 5}
    assert "properties" in result.changed_fields


@pytest.mark.django_db
def test_upsert_sets_company_owner_and_tags():
    company = CompanyFactory()
    owner = UserFactory()

    contact = contact_upsert(
        email="eve@example.com", company=company, owner=owner, tags=["VIP", "webinar "]
    ).contact

    assert contact.company == company and contact.owner == owner
    assert sorted(contact.tags.values_list("name", flat=True)) == ["vip", "webinar"]


@pytest.mark.django_db
def test_new_contacts_start_as_new_leads_unless_told_otherwise():
    plain = contact_upsert(email="f@example.com").contact
    customer = contact_upsert(email="g@example.com", lifecycle_stage="new_customer").contact

    assert plain.lifecycle_stage_id == LifecycleStage.Key.NEW_LEAD
    assert customer.lifecycle_stage_id == LifecycleStage.Key.NEW_CUSTOMER


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "h@example.com", "country": "Germany"}, "country"),
        ({"email": "h@example.com", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"email": "h@example.com", "lifecycle_stage": "royalty"}, "lifecycle_stage"),
    ],
)
def test_upsert_rejects_bad_fields_with_a_message_naming_the_field(fields, bad_field):
    with pytest.raises(ValidationError) as error:
        contact_upsert(**fields)

    assert bad_field in error.value.message_dict
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_update_cannot_take_another_contacts_email():
    ContactFactory(email="taken@example.com")
    contact = ContactFactory(email="mine@example.com")

    with pytest.raises(ValidationError):
        contact_update(contact=contact, email="TAKEN@example.com")


@pytest.mark.django_db
def test_update_writes_only_the_given_fields():
    contact = ContactFactory(first_name="Old")
    Contact.objects.filter(pk=contact.pk).update(lead_score=42)

    contact_update(contact=contact, first_name="New")

    contact.refresh_from_db()
    assert (contact.first_name, contact.lead_score) == ("New", 42)


@pytest.mark.django_db
def test_the_database_refuses_an_address_stored_in_another_case():
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_contact (email, first_name, last_name, phone, job_title, country,"
            " country_source, time_zone, language, lifecycle_stage_id, source, entry_point,"
            " utm_source, utm_medium, utm_campaign, properties, external_id, lead_score,"
            " created_at, updated_at) VALUES ('Raw@Example.com', '', '', '', '', '', '', '', '',"
            " 'new_lead', '', '', '', '', '', '{}', '', 0, %s, %s)",
            [timezone.now(), timezone.now()],
        )
