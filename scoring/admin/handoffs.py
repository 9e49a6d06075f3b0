"""The handoff queue: sales claims, contacts, accepts, recycles or rejects handed-off leads.

Status changes only through the services, from changelist actions or from the
buttons on a handoff's page. Recycle and reject ask for a reason on an
intermediate page rendered with the admin's templates.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from crm.admin.pagination import BigListMixin
from crm.admin.search import ContactSearchMixin
from scoring.admin.intent import RisingIntentFilter, intent_badge
from scoring.admin.rules import validation_message
from scoring.models import Handoff
from scoring.selectors import handoff_recent_close_reasons, handoff_report
from scoring.services import (
    handoff_accept,
    handoff_claim,
    handoff_mark_contacted,
    handoff_may_act,
    handoff_may_reassign,
    handoff_reassign,
    handoff_recycle,
    handoff_reject,
)

Status = Handoff.Status
#: Under this many minutes left, the SLA countdown turns amber.
SLA_WARNING_MINUTES = 10
REASON_SUMMARY_COUNT = 2


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Marketing reads this to improve scoring and nurturing. Be specific.",
    )


class ReassignForm(forms.Form):
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        label="New owner",
        help_text="They are notified, and the SLA clock starts again for them.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded on the contact's timeline with your name.",
    )

    def __init__(self, *args, exclude_pk: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Anyone who can work the queue: the Sales and Sales manager groups.
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, is_staff=True)
            .filter(groups__name__in=("Sales", "Sales manager"))
            .exclude(pk=exclude_pk)
            .distinct()
            .order_by("username")
        )


@dataclass(frozen=True)
class SalesAction:
    """One thing sales can do to a handoff, from the queue or the handoff's page."""

    name: str
    label: str
    done: str
    run: Callable[..., Handoff]
    needs_reason: bool = False

    def apply(self, handoff: Handoff, user, reason: str = "") -> Handoff:
        if self.needs_reason:
            return self.run(handoff=handoff, user=user, reason=reason)
        return self.run(handoff=handoff, user=user)


SALES_ACTIONS = {
    action.name: action
    for action in (
        SalesAction("claim", "Claim", "claimed", handoff_claim),
        SalesAction("contacted", "Mark contacted", "marked contacted", handoff_mark_contacted),
        SalesAction("accept", "Accept (open a deal)", "accepted", handoff_accept),
        SalesAction("recycle", "Recycle to nurture", "recycled", handoff_recycle, True),
        SalesAction("reject", "Reject: not a fit", "rejected", handoff_reject, True),
    )
}


class QueueFilter(admin.SimpleListFilter):
    """Open handoffs unless asked otherwise: the queue is what still needs doing."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("closed", "Closed"), ("all", "All"))

    def choices(self, changelist):
        current = self.value() or "open"
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(status__in=Handoff.OPEN_STATUSES)
        if value == "closed":
            return queryset.exclude(status__in=Handoff.OPEN_STATUSES)
        return queryset


class AssigneeFilter(admin.SimpleListFilter):
    """Mine and unassigned unless asked otherwise: what this salesperson may pick up now."""

    title = "assigned to"
    parameter_name = "assigned"
    DEFAULT = "mine_and_unassigned"

    def lookups(self, request, model_admin):
        return (
            (self.DEFAULT, "Mine and unassigned"),
            ("me", "Me"),
            ("nobody", "Nobody"),
            ("everyone", "Everyone"),
        )

    def choices(self, changelist):
        current = self.value() or self.DEFAULT
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or self.DEFAULT
        if value == self.DEFAULT:
            return queryset.filter(Q(owner=request.user) | Q(owner__isnull=True))
        if value == "me":
            return queryset.filter(owner=request.user)
        if value == "nobody":
            return queryset.filter(owner__isnull=True)
        return queryset


class SlaFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return (("breached", "Breached"), ("running", "Clock running"))

    def queryset(self, request, queryset):
        if self.value() == "breached":
            return queryset.filter(sla_breached_at__isnull=False)
        if self.value() == "running":
            return queryset.filter(status__in=Handoff.UNTOUCHED_STATUSES)
        return queryset


@admin.register(Handoff)
class HandoffAdmin(ContactSearchMixin, BigListMixin, admin.ModelAdmin):
    # Narrow columns first and the SLA timer second, so the queue fits 1,366 px beside
    # the navigation and the filters; the reasons are clipped to two short lines
    # (handoffs.css) and the rule is a filter: the rest is one click away.
    list_display = (
        "handoff_column",
        "sla_column",
        "age_column",
        "status",
        "owner",
        "score_column",
        "reasons_column",
    )
    # The contact's name is the link (with text); handoff_queue.js makes the whole row a link.
    list_display_links = None
    list_filter = (
        QueueFilter,
        AssigneeFilter,
        SlaFilter,
        RisingIntentFilter,
        "status",
        "rule",
        "owner",
    )

    class Media:
        css = {"all": ("scoring/handoffs.css",)}
        js = ("scoring/handoff_queue.js",)

    # Searched by ContactSearchMixin: the contact list's indexed search, by contact.
    search_fields = (
        "=contact__email",
        "contact__first_name",
        "contact__last_name",
        "contact__company__name",
    )
    # The most urgent first: the SLA due time orders the queue.
    ordering = ("sla_due_at", "pk")
    # contact__rising_intent: the queue's "rising intent" badge without a query per row.
    list_select_related = (
        "contact",
        "contact__company",
        "contact__rising_intent",
        "owner",
        "rule",
    )
    raw_id_fields = ("contact", "deal")
    actions = ("claim", "mark_contacted", "accept", "recycle", "reject")
    change_form_template = "admin/scoring/handoff/change_form.html"
    change_list_template = "admin/scoring/handoff/change_list.html"
    fieldsets = (
        (None, {"fields": ("contact", "status", "owner", "routed_by", "rule", "deal")}),
        ("Why", {"fields": ("score_column", "reasons_list")}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "sla_column",
                    "notified_at",
                    "claimed_at",
                    "contacted_at",
                    "sla_breached_at",
                )
            },
        ),
        ("Outcome", {"fields": ("closed_at", "closed_by", "close_reason", "rearmed_at")}),
    )
    readonly_fields = (
        "contact",
        "status",
        "owner",
        "routed_by",
        "rule",
        "deal",
        "score_column",
        "reasons_list",
        "created_at",
        "sla_column",
        "notified_at",
        "claimed_at",
        "contacted_at",
        "sla_breached_at",
        "closed_at",
        "closed_by",
        "close_reason",
        "rearmed_at",
    )

    # Handoffs are opened by rules and closed by sales' actions, never typed in.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- Columns ----------------------------------------------------------------------------

    @admin.display(description="lead", ordering="contact__email")
    def handoff_column(self, handoff: Handoff) -> str:
        contact = handoff.contact
        url = reverse("admin:scoring_handoff_change", args=[handoff.pk])
        company = contact.company.name if contact.company else ""
        return format_html(
            '<a class="handoff-link" href="{}">{}</a>{}<br><span class="quiet">{}</span>',
            url,
            str(contact) or contact.email,
            intent_badge(contact),
            company,
        )

    @admin.display(description="score", ordering="score")
    def score_column(self, handoff: Handoff) -> str:
        return format_html(
            '<strong title="{} engagement · {} fit">{}</strong>',
            handoff.engagement_score,
            handoff.fit_score,
            handoff.score,
        )

    @admin.display(description="why")
    def reasons_column(self, handoff: Handoff) -> str:
        reasons = handoff.reasons[:REASON_SUMMARY_COUNT]
        more = len(handoff.reasons) - len(reasons)
        return format_html(
            '<div class="handoff-why">{}{}</div>',
            format_html_join(
                "",
                '<div title="{}">{}{}</div>',
                ((reason["label"], _mark(reason), reason["label"]) for reason in reasons),
            ),
            format_html('<span class="quiet">+{} more</span>', more) if more > 0 else "",
        )

    @admin.display(description="reasons")
    def reasons_list(self, handoff: Handoff) -> str:
        if not handoff.reasons:
            return "—"
        items = format_html_join(
            "", "<li>{}{}</li>", ((_mark(reason), reason["label"]) for reason in handoff.reasons)
        )
        return format_html("<ul>{}</ul>", items)

    @admin.display(description="waiting", ordering="created_at")
    def age_column(self, handoff: Handoff) -> str:
        return timesince(handoff.created_at, timezone.now())

    @admin.display(description="SLA", ordering="sla_due_at")
    def sla_column(self, handoff: Handoff) -> str:
        return sla_badge(handoff)

    # --- Actions from the queue -------------------------------------------------------------

    @admin.action(description="Claim", permissions=["change"])
    def claim(self, request, queryset):
        self._run(request, queryset, SALES_ACTIONS["claim"])

    @admin.action(description="Mark contacted", permissions=["change"])
    def mark_contacted(self, request, queryset):
        self._run(request, queryset, SALES_ACTIONS["contacted"])

    @admin.action(description="Accept (open a deal, make an opportunity)", permissions=["change"])
    def accept(self, request, queryset):
        self._run(request, queryset, SALES_ACTIONS["accept"])

    @admin.action(description="Recycle to nurture…", permissions=["change"])
    def recycle(self, request, queryset):
        return self._run_with_reason(request, queryset, SALES_ACTIONS["recycle"])

    @admin.action(description="Reject as not a fit…", permissions=["change"])
    def reject(self, request, queryset):
        return self._run_with_reason(request, queryset, SALES_ACTIONS["reject"])

    def _run(self, request, queryset: QuerySet, action: SalesAction, reason: str = "") -> None:
        done = 0
        for handoff in queryset:
            try:
                action.apply(handoff, request.user, reason)
            except ValidationError as exc:
                self.message_user(
                    request, f"{handoff.contact}: {validation_message(exc)}", messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} handoff(s) {action.done}.", messages.SUCCESS)

    def _run_with_reason(self, request, queryset: QuerySet, action: SalesAction):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._run(request, queryset, action, form.cleaned_data["reason"])
            return None
        return self._reason_page(request, action, list(queryset), form, bulk=True)

    # --- One handoff's page -----------------------------------------------------------------

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        return [
            path(
                "report/",
                self.admin_site.admin_view(self.report_view),
                name=f"{name}_report",
            ),
            path(
                "<path:object_id>/reassign/",
                self.admin_site.admin_view(self.reassign_view),
                name=f"{name}_reassign",
            ),
            path(
                "<path:object_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.act_view),
                name=f"{name}_act",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        handoff = self.get_object(request, object_id)
        allowed = handoff is not None and self.has_change_permission(request, handoff)
        can_act = allowed and handoff_may_act(handoff=handoff, user=request.user)
        extra = {
            "sales_actions": SALES_ACTIONS.values() if can_act else (),
            # Open but someone else's: say whose, instead of offering buttons that fail.
            "owned_by_other": allowed and handoff.is_open and not can_act,
            "can_reassign": allowed and handoff.is_open and handoff_may_reassign(user=request.user),
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def reassign_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A Sales manager gives the lead to someone else, saying why (recorded)."""
        handoffs = Handoff.objects.select_related("contact", "owner")
        handoff = get_object_or_404(handoffs, pk=object_id)
        if not self.has_change_permission(request, handoff) or not handoff_may_reassign(
            user=request.user
        ):
            raise PermissionDenied
        form = ReassignForm(request.POST or None, exclude_pk=handoff.owner_id)
        if request.method == "POST" and form.is_valid():
            try:
                handoff_reassign(
                    handoff=handoff,
                    owner=form.cleaned_data["owner"],
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                self.message_user(request, validation_message(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{handoff.contact}: reassigned to {form.cleaned_data['owner']}.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:scoring_handoff_change", args=[handoff.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reassign {handoff.contact}",
            "opts": self.model._meta,
            "handoff": handoff,
            "form": form,
        }
        return TemplateResponse(request, "admin/scoring/handoff/reassign.html", context)

    def act_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Do one sales action to one handoff: POST does it, GET asks for confirmation."""
        sales_action = SALES_ACTIONS.get(action)
        handoff = get_object_or_404(Handoff.objects.select_related("contact"), pk=object_id)
        if sales_action is None or not self.has_change_permission(request, handoff):
            raise PermissionDenied
        form = ReasonForm(request.POST or None) if sales_action.needs_reason else None
        if request.method == "POST" and (form is None or form.is_valid()):
            reason = form.cleaned_data["reason"] if form else ""
            try:
                sales_action.apply(handoff, request.user, reason)
            except ValidationError as exc:
                self.message_user(request, validation_message(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"{handoff.contact}: {sales_action.done}.", messages.SUCCESS
                )
            return HttpResponseRedirect(reverse("admin:scoring_handoff_change", args=[handoff.pk]))
        return self._reason_page(request, sales_action, [handoff], form, bulk=False)

    def _reason_page(
        self, request, action: SalesAction, handoffs: list[Handoff], form, *, bulk: bool
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.label}: are you sure?",
            "opts": self.model._meta,
            "sales_action": action,
            "handoffs": handoffs,
            "form": form,
            "bulk": bulk,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "admin_action": {"recycle": "recycle", "reject": "reject"}.get(action.name, ""),
        }
        return TemplateResponse(request, "admin/scoring/handoff/action_confirm.html", context)

    # --- Marketing's feedback loop ----------------------------------------------------------

    def report_view(self, request: HttpRequest) -> TemplateResponse:
        """Per handoff rule: how many handoffs sales accepted, recycled or rejected, and why."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = handoff_report()
        context = {
            **self.admin_site.each_context(request),
            "title": "Handoffs per rule",
            "opts": self.model._meta,
            "rows": [(row, list(handoff_recent_close_reasons(rule=row.rule))) for row in rows],
        }
        return TemplateResponse(request, "admin/scoring/handoff/report.html", context)


def _mark(reason: dict) -> str:
    return "⚡ " if reason.get("type") == "signal" else ""


def sla_badge(handoff: Handoff) -> str:
    """The SLA countdown: time left, or how late, with breached ones in red."""
    now = timezone.now()
    if handoff.contacted_at is not None:
        minutes = int((handoff.contacted_at - handoff.created_at).total_seconds() // 60)
        met = handoff.contacted_at <= handoff.sla_due_at
        return format_html(
            '<span class="sla {}" style="color: {}">contacted after {} min</span>',
            "sla-met" if met else "sla-breached",
            "var(--body-quiet-color)" if met else "var(--error-fg, #ba2121)",
            minutes,
        )
    if not handoff.is_open:
        return "—"
    left = handoff.sla_due_at - now
    minutes = int(abs(left.total_seconds()) // 60)
    if left.total_seconds() < 0:
        # Inline colours as well as classes: other pages (the dashboard) show this badge
        # without loading handoffs.css.
        return format_html(
            '<span class="sla sla-breached" style="color: var(--error-fg, #ba2121); '
            'font-weight: bold">⚠ {} min overdue</span>',
            minutes,
        )
    warning = minutes < SLA_WARNING_MINUTES
    return format_html(
        '<span class="sla {}" style="color: {}">{} min left</span>',
        "sla-warning" if warning else "sla-running",
        "#b26a00" if warning else "var(--body-fg)",
        minutes,
    )
