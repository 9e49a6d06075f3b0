"""The worked examples in docs/segments.md are valid definitions that count."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from crm.segment_selectors import segment_contacts
from crm.segments.validation import References, definition_problems

DOC = Path(settings.BASE_DIR) / "docs" / "segments.md"
EXAMPLES = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_has_three_worked_examples():
    assert len(EXAMPLES) == 3


@pytest.mark.django_db
@pytest.mark.parametrize("example", EXAMPLES, ids=["high-intent", "inactive", "renewal"])
def test_each_worked_example_is_valid_and_counts(example):
    definition = json.loads(example)

    assert definition_problems(definition, references=References.load()) == []
    assert segment_contacts(definition=definition).count() == 0
