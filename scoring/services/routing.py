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


class _RoundRobins:
    """Round-robin turns for many leads at once: each pool's pointer locked and read once.

    Gives the same owners, in the same order, as calling round_robin_next once per lead
    (and keeps the pools' turns for the next caller), in a fixed number of queries per
    pool instead of four per lead. Use inside one transaction; call save() at its end.
    """

    def __init__(self):
        self._last: dict[str, int | None] = {}
        self._candidates: dict[str, list] = {}
        self._pointers: dict[str, int] = {}

    def next(self, *, pool: str, users, exclude: set[int]) -> AbstractBaseUser | None:
        """The pool's next user; `users` is a queryset, or a list already loaded."""
        if pool not in self._candidates:
            if isinstance(users, QuerySet):
                users = users.filter(is_active=True)
            self._candidates[pool] = sorted(
                (user for user in users if user.is_active), key=lambda user: user.pk
            )
        candidates = [user for user in self._candidates[pool] if user.pk not in exclude]
        if not candidates:
            return None
        if pool not in self._last:
            RoundRobinPointer.objects.get_or_create(pool=pool)
            pointer = RoundRobinPointer.objects.select_for_update().get(pool=pool)
            self._pointers[pool], self._last[pool] = pointer.pk, pointer.last_user_id
        last = self._last[pool]
        after = [user for user in candidates if last and user.pk > last]
        chosen = after[0] if after else candidates[0]
        self._last[pool] = chosen.pk
        return chosen

    def save(self) -> None:
        now = timezone.now()
        for pool, pk in self._pointers.items():
            RoundRobinPointer.objects.filter(pk=pk).update(
                last_user_id=self._last[pool], updated_at=now
            )


@transaction.atomic
def contacts_route(*, leads: Iterable[tuple[Contact, Iterable[int]]]) -> list[Route]:
    """contact_route for many leads, in order: (contact, user ids to pass over) each.

    The contacts should come with their owner and company (and its owner) loaded. The
    territories and the Sales group are read once, and each round-robin pool's pointer
    is locked once, so routing a backlog of 500 missed SLAs is a handful of queries.
    """
    territories = list(
        Territory.objects.filter(is_active=True)
        .order_by("position", "key")
        .prefetch_related("users")
    )
    turns = _RoundRobins()
    routes = []
    for contact, exclude in leads:
        routes.append(_route_one(contact, set(exclude), territories, turns))
    turns.save()
    return routes


def _route_one(
    contact: Contact, excluded: set[int], territories: list[Territory], turns: _RoundRobins
) -> Route:
    for user, how in (
        (contact.owner, "contact owner"),
        (contact.company.owner if contact.company else None, "company owner"),
    ):
        if user is not None and user.is_active and user.pk not in excluded:
            return Route(owner=user, routed_by=how)
    country = _country(contact).upper()
    territory = next((t for t in territories if country and country in t.country_codes), None)
    if territory is not None:
        user = turns.next(
            pool=f"territory:{territory.key}",
            users=territory.users.all(),
            exclude=excluded,
        )
        if user is not None:
            return Route(owner=user, routed_by=f"territory {territory.name}")
    user = turns.next(pool=SALES_POOL, users=sales_users(), exclude=excluded)
    if user is not None:
        return Route(owner=user, routed_by="round robin in Sales")
    return Route(owner=None, routed_by="unassigned: no active Sales user")
