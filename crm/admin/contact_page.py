"""What the contact change page shows around the form.

At the top, a summary header (stage, owner, consent per topic, and the parts other
apps register: score and reasons, current sequences and next step); inside the form,
above its one Save bar, the panels, the timeline in words, consent, suppression,
stage history and deals. Each section is a fixed number of queries, however long
the contact's history.
"""

from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import conditional_escape

from crm import admin_hooks
from crm.admin.timeline import activity_sentence, timeline_names
from crm.models import ConsentEntry, Contact, Deal, LifecycleStageChange
from crm.selectors import consent_by_topic, contact_timeline, suppressions_active_for

TIMELINE_PAGE_SIZE = 25
TIMELINE_PAGE_PARAM = "timeline_page"
STAGE_HISTORY_LIMIT = 20


def contact_page_context(request: HttpRequest, contact: Contact) -> dict:
    """Context for templates/admin/crm/contact/change_form.html's extra sections.

    A section's key is present only when the user may view that model.
    """
    user = request.user
    context = {"panels": _panels(request, contact), "summary": _summary_parts(request, contact)}
    if user.has_perm("crm.view_activity"):
        context["timeline"] = _timeline(request, contact)
    if user.has_perm("crm.view_consententry"):
        context["consent_topics"] = _consent(contact)
        context["consent_summary"] = [
            (row["topic"].name, _consent_state(row["current"])) for row in context["consent_topics"]
        ]
        context["can_record_consent"] = user.has_perm("crm.add_consententry")
    if user.has_perm("crm.view_suppression"):
        context["suppressions"] = list(suppressions_active_for(email=contact.email))
    if user.has_perm("crm.view_deal"):
        context["deals"] = list(
            Deal.objects.filter(contact=contact).select_related("stage", "owner").order_by("-pk")
        )
    if user.has_perm("crm.view_lifecyclestagechange"):
        context["stage_changes"] = list(
            LifecycleStageChange.objects.filter(contact=contact).select_related(
                "from_stage", "to_stage", "changed_by"
            )[:STAGE_HISTORY_LIMIT]
        )
    context["filter_by_contact"] = f"?contact__id__exact={contact.pk}"
    return {"contact_page": context}


def _timeline(request: HttpRequest, contact: Contact) -> dict:
    """One page of the timeline: TIMELINE_PAGE_SIZE + 1 rows read, nothing counted.

    The extra row says whether there is an older page. A contact with years of page
    views costs the same as a new one: one LIMIT read on the (contact, occurred_at)
    index, no COUNT of their activities (even a capped count read up to 10,001 rows).
    """
    number = _page_number(request.GET.get(TIMELINE_PAGE_PARAM))
    start = (number - 1) * TIMELINE_PAGE_SIZE
    activities = list(contact_timeline(contact=contact)[start : start + TIMELINE_PAGE_SIZE + 1])
    has_older = len(activities) > TIMELINE_PAGE_SIZE
    activities = activities[:TIMELINE_PAGE_SIZE]
    names = timeline_names(activities)
    return {
        "number": number,
        "rows": [(activity, activity_sentence(activity, names)) for activity in activities],
        "previous_url": _page_url(request, number - 1) if number > 1 else "",
        "next_url": _page_url(request, number + 1) if has_older else "",
        "activities_url": reverse("admin:crm_activity_changelist"),
    }


def _page_number(value: str | None) -> int:
    """The requested timeline page; anything that is not a positive number is the first."""
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def _page_url(request: HttpRequest, number: int) -> str:
    # Keep the other parameters (e.g. _changelist_filters) so "Save" still returns there.
    query = request.GET.copy()
    query[TIMELINE_PAGE_PARAM] = number
    return f"?{query.urlencode()}#timeline"


def _consent(contact: Contact) -> list[dict]:
    """Each topic's current state and its ledger rows, newest first."""
    ledger: dict[int, list[ConsentEntry]] = {}
    entries = (
        ConsentEntry.objects.filter(contact=contact)
        .select_related("consent_text", "recorded_by")
        .order_by("-occurred_at", "-pk")
    )
    for entry in entries:
        ledger.setdefault(entry.topic_id, []).append(entry)
    return [
        {"topic": topic, "current": current, "entries": ledger.get(topic.pk, [])}
        for topic, current in consent_by_topic(contact=contact)
    ]


def _consent_state(current: ConsentEntry | None) -> tuple[str, str]:
    """(css class, words) for a topic's current consent."""
    if current is None:
        return "unknown", "not asked"
    return ("granted", "granted") if current.is_granted else ("withdrawn", "withdrawn")


def _summary_parts(request: HttpRequest, contact: Contact) -> list[tuple[str, str]]:
    rendered = []
    for part in admin_hooks.contact_summary_parts():
        html = part.render(request, contact)
        if html:
            rendered.append((part.label, conditional_escape(html)))
    return rendered


def _panels(request: HttpRequest, contact: Contact) -> list[tuple[str, str]]:
    rendered = []
    for panel in admin_hooks.contact_panels():
        html = panel.render(request, contact)
        if html:
            rendered.append((panel.title, conditional_escape(html)))
    return rendered
