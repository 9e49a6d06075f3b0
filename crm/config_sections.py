"""crm config sections: filled in below."""
