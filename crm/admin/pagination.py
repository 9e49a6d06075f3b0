"""A paginator for big admin lists: it never counts a big table exactly.

Django's Paginator runs COUNT(*) over the filtered queryset on every page, even with
`show_full_result_count = False`; over a million contacts or ten million activities
that count alone costs more than the page budget. BigListPaginator instead:

- for an unfiltered list on PostgreSQL, reads the planner's row estimate
  (pg_class.reltuples, kept fresh by autovacuum's ANALYZE): no table scan at all;
- otherwise counts at most COUNT_CAP + 1 rows (COUNT over a LIMIT subquery, with no
  ORDER BY so the database stops at the first COUNT_CAP + 1 matches) and shows
  "1,000+" beyond that.

Small lists still get their exact count. The admin's pagination, search and action
templates (templates/admin/) show `count_label`, so people read "about 1,000,000"
or "1,000+" instead of a number that looks exact and is not.
"""

from django.contrib.admin import helpers
from django.core.paginator import EmptyPage, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _

#: Above this many rows a filtered list says "1,000+" instead of counting on. The capped
#: count costs in proportion to the cap: a common name searched at 1M read 120,000 rows
#: (three LIKEs each) to find 10,001 matches, 100-200 ms; 1,000 is 20 pages of 50, more
#: than anyone pages through, and "select all" still acts on every matching row.
COUNT_CAP = 1_000


def table_row_estimate(queryset: QuerySet) -> int | None:
    """The planner's estimate of the rows in the queryset's table, or None where unknown.

    PostgreSQL only: reltuples is -1 until the table is first analysed (PostgreSQL 14+),
    and other databases have no cheap equivalent.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def is_whole_table(queryset: QuerySet) -> bool:
    """True when the queryset is every row of its table, in some order."""
    query = queryset.query
    return not (query.where or query.distinct or query.combinator or query.is_sliced)


class BigListPaginator(Paginator):
    """Counts cheaply: an estimate for a whole big table, a capped count otherwise."""

    cap = COUNT_CAP

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: False when `count` is an estimate or the cap, not the number of rows.
        self.count_is_exact = True
        #: How to show the count: "1,234", "about 1,000,000" or "1,000+".
        self.count_label = ""

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if not isinstance(object_list, QuerySet):
            count = len(object_list)
            self.count_label = f"{count:,}"
            return count
        if is_whole_table(object_list):
            estimate = table_row_estimate(object_list)
            if estimate is not None and estimate > self.cap:
                self.count_is_exact = False
                self.count_label = f"about {_round_estimate(estimate):,}"
                return estimate
        # No ORDER BY: the database may stop at the first cap + 1 matching rows.
        count = object_list.order_by()[: self.cap + 1].count()
        if count > self.cap:
            self.count_is_exact = False
            self.count_label = f"{self.cap:,}+"
            return count
        self.count_label = f"{count:,}"
        return count

    def validate_number(self, number):
        # Past an estimate or the cap there may still be rows: let the page show what exists
        # (possibly nothing) rather than refuse a page number we cannot rule out.
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.count_is_exact or int(number) < 1:
                raise
            return int(number)

    def page(self, number):
        number = self.validate_number(number)
        if number <= self.num_pages:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


def _round_estimate(estimate: int) -> int:
    """Round to two significant figures: an estimate should not look exact."""
    if estimate < 100:
        return estimate
    digits = len(str(estimate)) - 2
    return round(estimate, -digits)


class BigListMixin:
    """For a ModelAdmin over a big table: estimated or capped counts, no facet counts.

    Also tells the action bar that "select all" picks every matching row, not a number
    it cannot know.
    """

    paginator = BigListPaginator
    show_full_result_count = False
    # Rendering a row costs more than fetching it (measured at 1M contacts: about half of
    # a 100-row page was template work), so big lists show 50 a page.
    list_per_page = 50

    def action_checkbox(self, obj):
        """Django's row checkbox, the same HTML, without a form widget template per row.

        Rendering 50 CheckboxInput widgets through the template engine was about a third
        of the rows' rendering time on the contact list and the handoff queue.
        """
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(_("Select this object for an action - {}"), str(obj)),
        )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        paginator = getattr(cl, "paginator", None)
        if paginator is not None and not getattr(paginator, "count_is_exact", True):
            context["selection_note_all"] = f"All {paginator.count_label} selected"
        return response
