"""One condition language for Nextstep: segments, scoring rules, triggers, goals, exits,
audiences and branches.

A condition tree is JSON: groups `{"match": "all" | "any" | "none", "conditions": [...]}`
holding conditions `{"field": ..., "operator": ..., "value": ...}` (plus a field's
own settings, such as a property's "key"). Two modes share the words:

- contact (`CONTACT_MODE`): facts about a person (crm.segments.catalog.FIELDS);
- activity (`ACTIVITY_MODE`): the activity being matched, its kind and properties
  (crm.segments.catalog.ACTIVITY_FIELDS).

The parts:
- vocabulary: crm.segments.catalog (fields, operators, value kinds, modes);
- validation: crm.segments.validation.definition_problems(mode=...);
- sets, in SQL: crm.segments.compiler.compile_definition / compile_activity_definition;
- one activity or contact, in Python: crm.conditions.evaluator;
- the old scoring and sequence words: crm.conditions.legacy (config import, migrations);
- the builder widget: crm.conditions.widget.ConditionBuilderWidget.

docs/segments.md ("The condition language") is the reference for marketers.
"""
