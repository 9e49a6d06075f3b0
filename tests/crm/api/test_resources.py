import datetime

import pytest
from django.utils import timezone

from crm.models import Company, ConsentEntry, Contact, Deal, LifecycleStageChange
from tests.factories import CompanyFactory, ContactFactory, DealFactory, UserFactory

CONTACTS = "/api/v1/contacts/"


def emails(response) -> set[str]:
    return {row["email"] for row in response.json()["results"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"email": "ADA@example.com"}, {"ada@example.com"}),
        ({"lifecycle_stage": "engaged_lead"}, {"grace@example.com"}),
        ({"score_min": 20}, {"grace@example.com", "linus@example.com"}),
        ({"score_min": 20, "score_max": 60}, {"grace@example.com"}),
        ({"external_id": "u-3"}, {"linus@example.com"}),
    ],
)
def test_contacts_can_be_filtered(server_client, query, expected):
    ContactFactory(email="ada@example.com", lead_score=5)
    ContactFactory(email="grace@example.com", lead_score=50, lifecycle_stage_id="engaged_lead")
    ContactFactory(email="linus@example.com", lead_score=90, external_id="u-3")

    response = server_client.get(CONTACTS, query)

    assert response.status_code == 200
    assert emails(response) == expected


@pytest.mark.django_db
def test_contacts_can_be_filtered_by_owner_and_updated_since(server_client):
    seller = UserFactory()
    owned = ContactFactory(owner=seller)
    ContactFactory()
    Contact.objects.exclude(pk=owned.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=3)
    )
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()

    by_owner = server_client.get(CONTACTS, {"owner": seller.pk})
    recent = server_client.get(CONTACTS, {"updated_since": since})

    assert emails(by_owner) == {owned.email}
    assert emails(recent) == {owned.email}


@pytest.mark.django_db
def test_a_bad_filter_value_is_a_400_naming_it(server_client):
    response = server_client.get(CONTACTS, {"score_min": "lots"})

    assert response.status_code == 400
    assert "score_min" in response.json()["fields"]


@pytest.mark.django_db
def test_contacts_are_paged_with_a_cursor_without_gaps_or_repeats(server_client):
    created = ContactFactory.create_batch(5)

    seen, url, pages = [], CONTACTS + "?page_size=2", 0
    while url:
        body = server_client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1

    assert pages == 3
    assert seen == sorted((contact.pk for contact in created), reverse=True)


@pytest.mark.django_db
def test_posting_a_contact_creates_it_then_updates_it(server_client):
    first = server_client.post(
        CONTACTS,
        {"email": "ada@example.com", "first_name": "Ada", "tags": ["vip"], "utm_source": "fair"},
        format="json",
    )
    second = server_client.post(
        CONTACTS,
        {"email": "ADA@example.com", "job_title": "CTO", "utm_source": "ads"},
        format="json",
    )

    assert (first.status_code, second.status_code) == (201, 200)
    body = second.json()
    assert (body["first_name"], body["job_title"], body["utm_source"]) == ("Ada", "CTO", "fair")
    assert body["tags"] == ["vip"] and body["source"] == "api"
    assert not ConsentEntry.objects.exists()


@pytest.mark.django_db
def test_posting_a_contact_refuses_consent_and_score(server_client):
    response = server_client.post(
        CONTACTS, {"email": "a@example.com", "consent": True, "lead_score": 99}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"consent", "lead_score"}


@pytest.mark.django_db
def test_patching_a_contact_moves_its_stage_with_the_key_as_source(server_client, server_key):
    contact = ContactFactory(properties={"plan": "free"})
    seller = UserFactory()

    response = server_client.patch(
        f"{CONTACTS}{contact.pk}/",
        {
            "owner": seller.pk,
            "properties": {"seats": 5},
            "lifecycle_stage": "opportunity",
            "lifecycle_stage_reason": "Asked for a quote",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["owner"], body["lifecycle_stage"]) == (seller.pk, "opportunity")
    assert body["properties"] == {"plan": "free", "seats": 5}
    change = LifecycleStageChange.objects.get(contact=contact)
    assert (change.source, change.reason) == (server_key.api_key.source_label, "Asked for a quote")


@pytest.mark.django_db
def test_patching_a_contact_with_a_taken_email_is_a_400(server_client):
    ContactFactory(email="taken@example.com")
    contact = ContactFactory()

    response = server_client.patch(
        f"{CONTACTS}{contact.pk}/", {"email": "taken@example.com"}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.json()["fields"]


@pytest.mark.django_db
def test_an_unknown_contact_is_a_404_in_the_error_shape(server_client):
    response = server_client.get(f"{CONTACTS}999999/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_companies_are_upserted_by_domain_and_filtered(server_client):
    server_client.post(
        "/api/v1/companies/", {"name": "Acme", "domain": "www.Acme.example"}, format="json"
    )
    server_client.post(
        "/api/v1/companies/", {"domain": "acme.example", "size": "51-200"}, format="json"
    )
    CompanyFactory(name="Other")

    response = server_client.get("/api/v1/companies/", {"domain": "ACME.example"})

    assert Company.objects.filter(domain="acme.example").count() == 1
    [company] = response.json()["results"]
    assert (company["name"], company["size"]) == ("Acme", "51-200")


@pytest.mark.django_db
def test_deals_are_opened_moved_and_filtered(server_client):
    contact = ContactFactory()
    DealFactory()

    opened = server_client.post(
        "/api/v1/deals/",
        {"name": "Pro plan", "stage": "qualification", "contact": contact.pk, "amount": "1200"},
        format="json",
    )
    deal_url = f"/api/v1/deals/{opened.json()['id']}/"
    refused = server_client.patch(deal_url, {"stage": "lost"}, format="json")
    lost = server_client.patch(deal_url, {"stage": "lost", "lost_reason": "Budget"}, format="json")
    listed = server_client.get("/api/v1/deals/", {"contact": contact.pk, "outcome": "lost"})

    assert opened.status_code == 201
    assert refused.status_code == 400 and "lost_reason" in refused.json()["fields"]
    assert (lost.json()["stage"], lost.json()["outcome"]) == ("lost", "lost")
    assert [row["name"] for row in listed.json()["results"]] == ["Pro plan"]
    assert Deal.objects.get(name="Pro plan").lost_reason == "Budget"
