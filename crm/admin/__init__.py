"""crm's admin, the product's main UI. One module per area; importing registers them."""

from crm.admin import activities, consent, contacts, deals, reference, work  # noqa: F401
