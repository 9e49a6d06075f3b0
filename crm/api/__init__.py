"""crm's REST API (DRF): events, identify, contacts, companies and deals under /api/v1/."""
