"""scoring's parts of crm's contact page, registered through crm.admin_hooks.

The "Score breakdown" panel, the score with its top reasons in the page's header, and
the timeline's words for a reassigned handoff.
"""

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from crm.admin_hooks import (
    register_activity_describer,
    register_contact_panel,
    register_contact_summary,
)
from crm.models import Contact
from scoring.models import Handoff
from scoring.selectors import score_parts, score_reasons

PANEL_TITLE = "Score breakdown"
#: Reasons shown next to the score in the page header; the panel lists more.
SUMMARY_REASON_COUNT = 3


def _reasons(request: HttpRequest, contact: Contact) -> list:
    """The contact's top reasons, read once per request: the panel and the header share them.

    The header shows the first SUMMARY_REASON_COUNT of the panel's list (same order), so
    one query serves both.
    """
    cache = request.__dict__.setdefault("_score_reasons", {})
    if contact.pk not in cache:
        cache[contact.pk] = score_reasons(contact_id=contact.pk)
    return cache[contact.pk]


def render_score_panel(request: HttpRequest, contact: Contact) -> str:
    """The score, its engagement and fit parts, and the top reasons (three queries)."""
    open_handoff = (
        Handoff.objects.filter(contact=contact, status__in=Handoff.OPEN_STATUSES).first()
        if request.user.has_perm("scoring.view_handoff")
        else None
    )
    context = {
        "lead_score": contact.lead_score,
        "parts": score_parts(contact_id=contact.pk),
        "reasons": _reasons(request, contact),
        "open_handoff": open_handoff,
        "open_handoff_url": reverse("admin:scoring_handoff_change", args=[open_handoff.pk])
        if open_handoff
        else "",
        "ledger_url": _ledger_url(request, contact),
    }
    return render_to_string("admin/scoring/contact_score_panel.html", context, request=request)


def _ledger_url(request: HttpRequest, contact: Contact) -> str:
    if not request.user.has_perm("scoring.view_scorechange"):
        return ""
    return f"{reverse('admin:scoring_scorechange_changelist')}?contact__id__exact={contact.pk}"


def render_score_summary(request: HttpRequest, contact: Contact) -> str:
    """The score and its top reasons for the page header (the panel's query, shared)."""
    reasons = _reasons(request, contact)[:SUMMARY_REASON_COUNT]
    items = format_html_join("", "<li>{}</li>", ((reason.label,) for reason in reasons))
    return format_html(
        '<strong class="summary-score">{}</strong> points{}',
        contact.lead_score,
        format_html("<ul>{}</ul>", items) if reasons else "",
    )


def describe_reassignment(activity, users: dict[int, str]) -> str:
    """The timeline's words for `handoff_reassigned`: who had the lead, who has it, and why."""
    properties = activity.properties or {}
    before = users.get(properties.get("from_owner_id"), "nobody")
    after = users.get(properties.get("to_owner_id"), "someone")
    by = users.get(properties.get("by_user_id"))
    text = f"Lead reassigned from {before} to {after}"
    text += f" by {by}" if by else ""
    reason = properties.get("reason")
    return f"{text}: “{reason}”" if reason else text


register_contact_panel(PANEL_TITLE, render_score_panel)
register_contact_summary("Score", render_score_summary, position=10)
register_activity_describer("handoff_reassigned", describe_reassignment)
