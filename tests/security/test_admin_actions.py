"""Finding 5: only roles that may record consent and add suppressions unsubscribe from all."""

import pytest
from django.urls import reverse

from crm.models import ConsentEntry, Suppression
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:crm_contact_changelist"


def unsubscribe_all(client, user, contact):
    client.force_login(user)
    return client.post(
        reverse(CHANGELIST),
        {"action": "unsubscribe_contacts_from_all", "_selected_action": [contact.pk]},
        secure=True,
    )


@pytest.mark.parametrize("role", ["salesperson", "success_manager"])
def test_sales_and_customer_success_cannot_unsubscribe_from_all(client, request, role):
    contact = ContactFactory()
    user = request.getfixturevalue(role)

    response = unsubscribe_all(client, user, contact)
    listed = client.get(reverse(CHANGELIST), secure=True).content.decode()

    # Django answers an action the user may not run by ignoring it ("No action selected").
    assert response.status_code in (200, 302)
    assert not ConsentEntry.objects.filter(contact=contact).exists()
    assert not Suppression.objects.filter(email=contact.email).exists()
    assert "unsubscribe_contacts_from_all" not in listed


def test_marketing_can_unsubscribe_from_all(client, marketer):
    contact = ContactFactory()

    response = unsubscribe_all(client, marketer, contact)

    assert response.status_code == 302
    assert Suppression.objects.filter(email=contact.email, reason="unsubscribed").exists()
