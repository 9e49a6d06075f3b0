"""Who gets a lead: its owner, its company's owner, a territory, or the next salesperson."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Contact
from crm.segment_selectors import segments_containing
from crm.segments.compiler import CompileContext
from scoring.models import DemoRoutingRule, RoundRobinPointer, Territory
from scoring.selectors import demo_routing_rules_active

SALES_GROUP = "Sales"
SALES_POOL = "sales"


@dataclass(frozen=True)
class Route:
    """The chosen owner (None when nobody can take it) and how they were chosen."""

    owner: AbstractBaseUser | None
    routed_by: str


@transaction.atomic
def contact_route(
    *,
    contact: Contact,
    preferred: AbstractBaseUser | None = None,
    exclude: Iterable[int] = (),
) -> Route:
    """Choose the salesperson for a contact.

    In order: `preferred` (e.g. the owner of their open handoff), the contact's
    owner, the company's owner, round-robin in the territory of their country,
    round-robin among active members of the Sales group. Inactive users and users
    in `exclude` are passed over.
    """
    excluded = set(exclude)
    for user, how in (
        (preferred, "owner of the open handoff"),
        (contact.owner, "contact owner"),
        (contact.company.owner if contact.company else None, "company owner"),
    ):
        if user is not None and user.is_active and user.pk not in excluded:
            return Route(owner=user, routed_by=how)
    territory = territory_for(country=_country(contact))
    if territory is not None:
        user = round_robin_next(
            pool=f"territory:{territory.key}", users=territory.users.all(), exclude=excluded
        )
        if user is not None:
            return Route(owner=user, routed_by=f"territory {territory.name}")
    user = round_robin_next(pool=SALES_POOL, users=sales_users(), exclude=excluded)
    if user is not None:
        return Route(owner=user, routed_by="round robin in Sales")
    return Route(owner=None, routed_by="unassigned: no active Sales user")


@transaction.atomic
def demo_segment_routes(*, contact_ids: Iterable[int], now: datetime.datetime) -> dict[int, Route]:
    """Route demo requests by the first active routing rule whose segment holds the contact.

    Segments are checked live for the whole batch in one query. Contacts no rule
    holds, or whose rule finds nobody active, are left out: the usual routing takes them.
    """
    contact_ids = sorted(set(contact_ids))
    rules = demo_routing_rules_active() if contact_ids else []
    if not rules:
        return {}
    containing = segments_containing(
        segments={rule.segment_id: rule.segment for rule in rules}.values(),
        contact_ids=contact_ids,
        context=CompileContext(now=now),
    )
    routes = {}
    for contact_id in contact_ids:
        rule = next(
            (rule for rule in rules if contact_id in containing.get(rule.segment_id, ())), None
        )
        route = _demo_rule_route(rule) if rule is not None else None
        if route is not None and route.owner is not None:
            routes[contact_id] = route
    return routes


def _demo_rule_route(rule: DemoRoutingRule) -> Route:
    how = f"demo routing rule {rule.name}"
    if rule.assignee is not None and rule.assignee.is_active:
        return Route(owner=rule.assignee, routed_by=how)
    if rule.users.exists():
        user = round_robin_next(pool=rule.round_robin_pool, users=rule.users.all())
    else:
        user = round_robin_next(pool=SALES_POOL, users=sales_users())
    return Route(owner=user, routed_by=f"{how}, round robin")


def sales_users() -> QuerySet:
    """Active members of the Sales group."""
    return get_user_model().objects.filter(is_active=True, groups__name=SALES_GROUP).distinct()


def _country(contact: Contact) -> str:
    if contact.country:
        return contact.country
    return contact.company.country if contact.company else ""


def territory_for(*, country: str) -> Territory | None:
    """The first active territory that lists the country."""
    if not country:
        return None
    for territory in Territory.objects.filter(is_active=True).order_by("position", "key"):
        if country.upper() in territory.country_codes:
            return territory
    return None


def round_robin_next(
    *, pool: str, users: QuerySet, exclude: Iterable[int] = ()
) -> AbstractBaseUser | None:
    """The active user after the last one this pool gave work to, wrapping around.

    The pool's pointer row is locked while choosing, so concurrent handoffs take
    turns instead of landing on the same person.
    """
    excluded = set(exclude)
    candidates = [
        user for user in users.filter(is_active=True).order_by("pk") if user.pk not in excluded
    ]
    if not candidates:
        return None
    RoundRobinPointer.objects.get_or_create(pool=pool)
    pointer = RoundRobinPointer.objects.select_for_update().get(pool=pool)
    after = [user for user in candidates if pointer.last_user_id and user.pk > pointer.last_user_id]
    chosen = after[0] if after else candidates[0]
    RoundRobinPointer.objects.filter(pk=pointer.pk).update(
        last_user=chosen, updated_at=timezone.now()
    )
    return chosen
