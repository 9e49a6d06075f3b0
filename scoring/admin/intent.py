"""Rising intent in the admin: the contact page's panel, the handoff queue's badge and filter.

The flags are precomputed by scoring.intent.rising_intent_refresh: the panel reads one
row, the queue reads it with the handoff's contact (select_related), never the ledger.
"""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from crm.admin_hooks import register_contact_panel
from crm.models import Contact
from scoring.intent import rising_intent_get, rising_intent_sentence
from scoring.models import RisingIntent

PANEL_TITLE = "Rising intent"


def render_rising_intent_panel(request: HttpRequest, contact: Contact) -> str:
    """The flag with its figures and behaviours, or nothing without one (one query)."""
    intent = rising_intent_get(contact=contact)
    if intent is None:
        return ""
    return format_html(
        '<p class="rising-intent"><strong>Rising intent</strong>: {}.</p>'
        '<p class="quiet">Flagged {}; points from the scoring rules, against this contact\'s '
        "own mean over the 8 weeks before.</p>",
        rising_intent_sentence(intent),
        intent.flagged_at.strftime("%Y-%m-%d %H:%M UTC"),
    )


def intent_badge(contact: Contact) -> str:
    """The queue's badge, from the flag loaded with the contact (no query of its own)."""
    try:
        intent = contact.rising_intent
    except RisingIntent.DoesNotExist:
        return ""
    return format_html(
        ' <span class="intent-badge" title="{}">rising intent</span>',
        rising_intent_sentence(intent),
    )


class RisingIntentFilter(admin.SimpleListFilter):
    """Handoffs whose contact's engagement is rising sharply right now."""

    title = "intent"
    parameter_name = "intent"

    def lookups(self, request, model_admin):
        return (("rising", "Rising intent"),)

    def queryset(self, request, queryset):
        if self.value() == "rising":
            return queryset.filter(contact__rising_intent__isnull=False)
        return queryset


register_contact_panel(PANEL_TITLE, render_rising_intent_panel)
