"""Routing: the contact's owner, the company's owner, a territory, then round-robin in Sales."""

import pytest

from scoring.models import RoundRobinPointer
from scoring.services import contact_route
from tests.factories import CompanyFactory, ContactFactory, TerritoryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales_team(db):
    return [UserFactory(username=f"rep-{n}", groups=["Sales"]) for n in range(3)]


def test_the_contacts_owner_comes_first(sales_team):
    owner = UserFactory(username="owner")
    contact = ContactFactory(owner=owner, company=CompanyFactory(owner=sales_team[0]))

    route = contact_route(contact=contact)

    assert (route.owner, route.routed_by) == (owner, "contact owner")


def test_then_the_companys_owner(sales_team):
    contact = ContactFactory(company=CompanyFactory(owner=sales_team[1]))

    route = contact_route(contact=contact)

    assert (route.owner, route.routed_by) == (sales_team[1], "company owner")


def test_an_inactive_owner_is_passed_over(sales_team):
    gone = UserFactory(username="gone", is_active=False)

    route = contact_route(contact=ContactFactory(owner=gone))

    assert route.owner in sales_team


def test_otherwise_round_robin_among_active_sales_users(sales_team):
    UserFactory(username="rep-away", groups=["Sales"], is_active=False)
    UserFactory(username="marketer-x", groups=["Marketing"])

    owners = [contact_route(contact=ContactFactory(country="FR")).owner for _ in range(4)]

    assert owners == [sales_team[0], sales_team[1], sales_team[2], sales_team[0]]
    assert RoundRobinPointer.objects.get(pool="sales").last_user == sales_team[0]


def test_a_territory_routes_its_countries_to_its_people(sales_team):
    dach = TerritoryFactory(key="dach", name="DACH", countries="DE, AT, CH")
    dach.users.add(sales_team[2])

    german = contact_route(contact=ContactFactory(country="DE"))
    company_in_austria = contact_route(
        contact=ContactFactory(country="", company=CompanyFactory(country="AT"))
    )
    french = contact_route(contact=ContactFactory(country="FR"))

    assert (german.owner, german.routed_by) == (sales_team[2], "territory DACH")
    assert company_in_austria.owner == sales_team[2]
    assert french.routed_by == "round robin in Sales"


def test_nobody_to_route_to_leaves_it_unassigned(db):
    route = contact_route(contact=ContactFactory())

    assert route.owner is None
    assert route.routed_by.startswith("unassigned")


def test_routing_many_leads_at_once_routes_each_as_one_at_a_time_would(sales_team):
    from scoring.services.routing import contacts_route

    dach = TerritoryFactory(key="dach", name="DACH", countries="DE, AT, CH")
    dach.users.add(sales_team[1], sales_team[2])
    owner = UserFactory(username="owner")
    contacts = [
        ContactFactory(country="DE"),
        ContactFactory(country="FR"),
        ContactFactory(owner=owner, country="DE"),
        ContactFactory(country="", company=CompanyFactory(country="AT")),
        ContactFactory(country="FR"),
        ContactFactory(country="DE"),
    ]
    passed_over = {0: [sales_team[1].pk], 4: [sales_team[1].pk]}

    routes = contacts_route(leads=[(c, passed_over.get(i, [])) for i, c in enumerate(contacts)])

    assert [(r.owner, r.routed_by) for r in routes] == [
        (sales_team[2], "territory DACH"),  # rep-1 passed over
        (sales_team[0], "round robin in Sales"),
        (owner, "contact owner"),
        (sales_team[1], "territory DACH"),  # the territory's turn after rep-2
        (sales_team[2], "round robin in Sales"),  # rep-1 passed over
        (sales_team[2], "territory DACH"),
    ]
    pointers = dict(RoundRobinPointer.objects.values_list("pool", "last_user"))
    assert pointers == {"territory:dach": sales_team[2].pk, "sales": sales_team[2].pk}
