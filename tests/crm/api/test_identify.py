import pytest
from django.utils import timezone

from crm.models import Activity, ConsentEntry, Contact
from crm.services.identity import IDENTIFIED_KIND
from tests.factories import ActivityFactory, ContactFactory

IDENTIFY = "/api/v1/identify/"


def identify(client, **body):
    return client.post(IDENTIFY, body, format="json")


def anonymous_view(anonymous_id, path="/pricing"):
    return ActivityFactory(contact=None, anonymous_id=anonymous_id, properties={"path": path})


@pytest.mark.django_db
def test_identify_gives_the_visitors_anonymous_history_to_the_contact(server_client):
    contact = ContactFactory(email="ada@example.com")
    earlier = [anonymous_view("visitor-1"), anonymous_view("visitor-1", "/docs")]
    someone_else = anonymous_view("visitor-2")

    response = identify(server_client, anonymous_id="visitor-1", email="ada@example.com")

    assert response.status_code == 200
    assert response.json()["merged_activity_count"] == 2
    assert {a.contact_id for a in Activity.objects.filter(pk__in=[a.pk for a in earlier])} == {
        contact.pk
    }
    someone_else.refresh_from_db()
    assert someone_else.contact is None
    assert Activity.objects.filter(kind=IDENTIFIED_KIND, contact=contact).count() == 1


@pytest.mark.django_db
def test_identifying_again_records_the_tie_once(server_client):
    ContactFactory(email="ada@example.com")

    for _ in range(3):
        identify(server_client, anonymous_id="visitor-1", email="ada@example.com")

    assert Activity.objects.filter(kind=IDENTIFIED_KIND).count() == 1


@pytest.mark.django_db
def test_identify_creates_an_unknown_person_with_traits_and_no_consent(server_client):
    response = identify(
        server_client,
        anonymous_id="visitor-1",
        email="New@Example.com",
        traits={"first_name": "Grace", "country": "us", "properties": {"plan": "pro"}},
        context={"page_url": "https://www.example.com/signup?utm_source=ads"},
    )

    assert response.status_code == 201
    contact = Contact.objects.get(pk=response.json()["contact_id"])
    assert (contact.email, contact.first_name, contact.country) == (
        "new@example.com",
        "Grace",
        "US",
    )
    assert contact.country_source == Contact.CountrySource.DECLARED
    assert contact.properties == {"plan": "pro"}
    assert contact.utm_source == "ads"
    assert not ConsentEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"anonymous_id": "visitor-1"},
        {"anonymous_id": "visitor-1", "context": {"ip": "203.0.113.9"}},
        {"context": {"ip": "203.0.113.9"}},
    ],
)
def test_an_anonymous_id_or_ip_alone_never_creates_a_contact(server_client, body):
    anonymous_view("visitor-1")

    response = identify(server_client, **body)

    assert response.status_code == 400
    assert "never identifies a person" in response.json()["fields"]["email"][0]
    assert not Contact.objects.exists()
    assert Activity.objects.get().contact is None


@pytest.mark.django_db
def test_identify_by_external_id_finds_the_contact_and_can_change_its_email(server_client):
    contact = ContactFactory(email="old@example.com", external_id="user-7")

    response = identify(server_client, external_id="user-7", email="new@example.com")

    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.email == "new@example.com"


@pytest.mark.django_db
def test_an_unknown_external_id_alone_creates_nothing(server_client):
    response = identify(server_client, external_id="user-404")

    assert response.status_code == 400
    assert "send their email" in response.json()["fields"]["external_id"][0]


@pytest.mark.django_db
def test_email_and_external_id_of_two_different_contacts_are_refused(server_client):
    ContactFactory(email="ada@example.com")
    ContactFactory(external_id="user-9")

    response = identify(server_client, external_id="user-9", email="ada@example.com")

    assert response.status_code == 400
    assert "another contact" in response.json()["fields"]["external_id"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["owner", "lifecycle_stage", "lead_score", "consent"])
def test_identify_never_sets_owner_stage_score_or_consent(server_client, field):
    ContactFactory(email="ada@example.com")

    response = identify(server_client, email="ada@example.com", traits={field: "x"})

    assert response.status_code == 400
    assert f"traits.{field}" in response.json()["fields"]


@pytest.mark.django_db
def test_a_browser_key_writes_no_trait_even_into_empty_fields(browser_client):
    ContactFactory(email="ada@example.com", first_name="Ada", job_title="")

    response = identify(
        browser_client,
        email="ada@example.com",
        anonymous_id="visitor-1",
        traits={"first_name": "Mallory", "job_title": "CTO", "properties": {"plan": "x"}},
    )

    assert response.status_code == 202
    contact = Contact.objects.get(email="ada@example.com")
    assert (contact.first_name, contact.job_title, contact.properties) == ("Ada", "", {})


@pytest.mark.django_db
def test_a_browser_key_cannot_change_an_identified_contacts_email(browser_client):
    ContactFactory(email="ada@example.com", external_id="user-7")

    response = identify(browser_client, external_id="user-7", email="mallory@example.com")

    assert response.status_code == 202
    assert Contact.objects.get(external_id="user-7").email == "ada@example.com"
    assert not Contact.objects.filter(email="mallory@example.com").exists()


@pytest.mark.django_db
def test_events_after_identify_belong_to_the_contact(browser_client):
    ada = ContactFactory(email="ada@example.com")
    identify(browser_client, anonymous_id="visitor-1", email="ada@example.com")

    response = browser_client.post(
        "/api/v1/events/",
        {"type": "page_viewed", "anonymous_id": "visitor-1", "occurred_at": timezone.now()},
        format="json",
    )

    assert response.json()["results"][0] == {"index": 0, "status": "accepted"}
    assert Activity.objects.get(kind="page_viewed").contact == ada


@pytest.mark.django_db
def test_a_browser_key_cannot_give_an_existing_contact_an_external_id(browser_client):
    ContactFactory(email="ada@example.com")

    response = identify(browser_client, email="ada@example.com", external_id="user-evil")

    assert response.status_code == 202
    assert Contact.objects.get(email="ada@example.com").external_id == ""
