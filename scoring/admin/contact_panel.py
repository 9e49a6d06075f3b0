"""The "Lead score" panel on crm's contact page, registered through crm.admin_hooks."""

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from crm.admin_hooks import register_contact_panel
from crm.models import Contact
from scoring.models import Handoff
from scoring.selectors import score_parts, score_reasons

PANEL_TITLE = "Score breakdown"


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
        "reasons": score_reasons(contact_id=contact.pk),
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


register_contact_panel(PANEL_TITLE, render_score_panel)
