"""scoring's admin: rules for marketing, the handoff queue for sales, the contact's score."""

from scoring.admin import contact_panel, handoffs, rules  # noqa: F401
