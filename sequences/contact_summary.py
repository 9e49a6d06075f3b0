"""sequences' part of crm's contact page header: current sequences and each one's next step.

Registered through crm.admin_hooks (crm never imports sequences); imported by
sequences/admin.py so it registers when the admin loads.
"""

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil

from crm.admin_hooks import register_contact_summary
from crm.models import Contact
from sequences.models import Enrollment

#: More than this and the header links to the rest.
SUMMARY_ENROLLMENT_COUNT = 3


def render_sequences_summary(request: HttpRequest, contact: Contact) -> str:
    """The contact's live enrollments, soonest next step first (one query)."""
    if not request.user.has_perm("sequences.view_enrollment"):
        return ""
    live = list(
        Enrollment.objects.filter(contact=contact, state__in=Enrollment.LIVE_STATES)
        .select_related("sequence")
        .order_by("due_at", "pk")[: SUMMARY_ENROLLMENT_COUNT + 1]
    )
    if not live:
        return format_html("{}", "In no sequence now")
    rows = [
        (
            reverse("admin:sequences_enrollment_change", args=[enrollment.pk]),
            enrollment.sequence.name,
            next_step_words(enrollment),
        )
        for enrollment in live[:SUMMARY_ENROLLMENT_COUNT]
    ]
    more = ""
    if len(live) > SUMMARY_ENROLLMENT_COUNT:
        url = reverse("admin:sequences_enrollment_changelist")
        more = format_html('<li><a href="{}?contact__id__exact={}">more…</a></li>', url, contact.pk)
    items = format_html_join("", '<li><a href="{}">{}</a>: {}</li>', rows)
    return format_html("<ul>{}{}</ul>", items, more)


def next_step_words(enrollment: Enrollment) -> str:
    """ "step 'tips' in 2 hours", or what the enrollment waits for."""
    step = f"step “{enrollment.current_step}”" if enrollment.current_step else "starting"
    if enrollment.state == Enrollment.State.WAITING:
        event = (enrollment.waiting_for or {}).get("activity") or "an event"
        until = f" (until {timeuntil(enrollment.due_at)} from now)" if enrollment.due_at else ""
        return f"{step}, waiting for {str(event).replace('_', ' ')}{until}"
    if enrollment.due_at is None:
        return step
    if enrollment.due_at <= timezone.now():
        return f"{step}, due now"
    return f"{step} in {timeuntil(enrollment.due_at)}"


register_contact_summary("Sequences", render_sequences_summary, position=20)
