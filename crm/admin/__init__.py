"""crm's admin, the product's main UI. One module per area; importing registers them."""

from crm.admin import (  # noqa: F401
    activities,
    api_keys,
    consent,
    contacts,
    dashboard,
    deals,
    privacy,
    reference,
    segments,
    work,
)
