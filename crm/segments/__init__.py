"""Segments: the definition schema, its validation and its compilation to one query.

- `catalog`: every condition a segment can use, with its operators and value kinds
  (the builder in the admin is drawn from it).
- `validation`: readable problems with a definition, and cycles between segments.
- `compiler`: a definition to a `Q` over Contact, with Exists / Subquery for
  everything that is not a contact column, so a segment is always one query.

Reads live in crm.segment_selectors, writes (memberships) in crm.services.segments.
"""
