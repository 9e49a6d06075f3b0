"""Admin search that an index can answer, at a million contacts.

Django's search ORs `UPPER(column) LIKE '%term%'` over every search field, joins
included, which no index serves: searching contacts scanned the whole table. Here:

- a term that looks like an email address matches the address exactly (the unique
  index; NormalisedEmailField lower-cases the term);
- any other word matches inside email, first name, last name and company name
  (PostgreSQL: the trigram GIN indexes of migration crm 0NNN_search_indexes serve
  `UPPER(col) LIKE '%word%'`; words of one or two letters match the start of a
  name instead, which the same indexes serve). The matching companies are looked up
  first and enter as a list of ids, so every condition is on the contact table and
  no OR spans a join (a word matching very many companies uses a UNION on pk);
- the external id matches exactly.

Several words must all match, as in Django's search.
"""

import re

from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from crm.emails import normalise_email
from crm.models import Company, Contact

#: A whole address: something@domain.tld, no spaces.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Shorter words match the start of a name: a trigram index needs three characters.
MIN_CONTAINS_LENGTH = 3
#: A word naming more companies than this searches them by subquery, not by id list.
COMPANY_LIMIT = 500


def looks_like_email(term: str) -> bool:
    return bool(EMAIL_PATTERN.match(term.strip()))


def search_words(term: str) -> list[str]:
    """The words of a search, as Django's admin splits them (quotes keep phrases)."""
    words = []
    for word in smart_split(term):
        if word[0] in "\"'" and word[0] == word[-1] and len(word) > 1:
            word = unescape_string_literal(word)
        if word.strip():
            words.append(word.strip())
    return words


def contact_ids_matching(term: str) -> QuerySet | None:
    """Primary keys of the contacts a search term finds, as a subquery; None for no term."""
    condition = contact_search_condition(term)
    if condition is None:
        return None
    return Contact.objects.filter(condition).order_by().values("pk")


def contact_search_condition(term: str) -> Q | None:
    """A condition on Contact rows for a search term; None for no term."""
    term = term.strip()
    if not term:
        return None
    if looks_like_email(term):
        return Q(email=term)
    condition = Q()
    for word in search_words(term):
        condition &= _word_condition(word)
    return condition


def _word_condition(word: str) -> Q:
    """Contacts whose email, name, external id or company name match one word.

    Every part is a condition on the contact table itself, so PostgreSQL can OR their
    index scans (BitmapOr) or, for a common word, walk the newest contacts and stop at
    a page. The company's name is looked up first (its own trigram index), and its ids
    enter as a list; a word naming more than COMPANY_LIMIT companies uses a UNION of
    subqueries instead, which an OR across the join would defeat.
    """
    lookup = "icontains" if len(word) >= MIN_CONTAINS_LENGTH else "istartswith"
    own_columns = (
        Q(**{f"email__{lookup}": word})
        | Q(**{f"first_name__{lookup}": word})
        | Q(**{f"last_name__{lookup}": word})
        | Q(external_id=word)
    )
    companies = Company.objects.filter(**{f"name__{lookup}": word}).order_by()
    company_ids = list(companies.values_list("pk", flat=True)[: COMPANY_LIMIT + 1])
    if len(company_ids) <= COMPANY_LIMIT:
        return own_columns | Q(company_id__in=company_ids) if company_ids else own_columns
    by_own_columns = Contact.objects.filter(own_columns).order_by().values("pk")
    by_company = Contact.objects.filter(company__in=companies.values("pk")).order_by()
    return Q(pk__in=by_own_columns.union(by_company.values("pk")))


class IndexedSearchMixin:
    """Search for a log-like ModelAdmin: exact matches only, each one an index lookup.

    A term that looks like an email finds the rows of the contact with that address
    (`search_contact_field`, a path to a Contact foreign key) or rows holding that
    address (`search_email_fields`); any other term is compared, case included, with
    `search_exact_fields`. A substring search over millions of log rows has no index.
    Set `search_fields` too: Django shows the search box only when it is non-empty.
    """

    search_contact_field = ""
    search_email_fields: tuple[str, ...] = ()
    search_exact_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        conditions = []
        if looks_like_email(term):
            if self.search_contact_field:
                contact_ids = Contact.objects.filter(email=term).values("pk")
                conditions.append(Q(**{f"{self.search_contact_field}__in": contact_ids}))
            conditions += [Q(**{name: normalise_email(term)}) for name in self.search_email_fields]
        else:
            conditions += [
                Q(**{name: term})
                for name in self.search_exact_fields
                if _accepts(queryset.model, name, term)
            ]
        if not conditions:
            return queryset.none(), False
        condition = conditions[0]
        for other in conditions[1:]:
            condition |= other
        return queryset.filter(condition), False


def _accepts(model, path: str, term: str) -> bool:
    """Whether the field at `path` can hold `term` (a uuid field refuses other text)."""
    field = get_fields_from_path(model, path)[-1]
    try:
        field.to_python(term)
    except ValidationError:
        return False
    return True


class ContactSearchMixin:
    """Search rows by their contact, the way the contact list searches (see module doc)."""

    #: Path to the Contact foreign key.
    search_contact_field = "contact"

    def get_search_results(self, request, queryset, search_term):
        contact_ids = contact_ids_matching(search_term)
        if contact_ids is None:
            return queryset, False
        return queryset.filter(**{f"{self.search_contact_field}__in": contact_ids}), False
