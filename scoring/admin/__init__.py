"""scoring's admin: rules for marketing, the handoff queue for sales, the contact's score."""

from scoring.admin import contact_panel, dashboard, handoffs, intent, rules  # noqa: F401
