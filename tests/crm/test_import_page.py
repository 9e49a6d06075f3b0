"""The import page reads top to bottom: counts, consent (prominent), left-out rows, preview,
then Confirm; headers in words; counts with correct plurals."""

import pytest
from import_export.results import RowResult

from crm.imports import column_label, import_preview_summary, import_totals_message
from tests.crm.test_imports import SOURCE, import_file, message_texts, upload
from tests.factories import ConsentTextFactory, ConsentTopicFactory

pytestmark = pytest.mark.django_db


def test_preview_comes_first_and_confirm_below_it(client, marketer):
    topic = ConsentTopicFactory(key="webinars", name="Webinars")
    ConsentTextFactory(topic=topic, version=1, text="Email me about webinars.")
    client.force_login(marketer)

    preview = upload(
        client,
        "email,first_name,utm_source\nann@example.com,Ann,x\nnot-an-email,Bob,y\n",
        consent_topic=topic.pk,
        consent_confirmed="on",
    )

    body = preview.content.decode()
    order = [
        body.index('id="import-summary"'),
        body.index('id="import-consent"'),
        body.index("1 row that will not be imported"),
        body.index('id="import-preview"'),
        body.index('id="import-confirm"'),
    ]
    assert order == sorted(order)
    assert body.count('name="confirm"') == 1
    assert "1 row will be imported: 1 new, 0 updated, 0 unchanged." in body
    assert "1 row is left out" in body
    assert 'class="import-consent-wording">Email me about webinars.' in body
    assert "<th>First name</th>" in body and "<th>Lifecycle stage</th>" in body
    assert "first_name</th>" not in body
    assert 'class="import-table-scroll"' in body
    assert SOURCE in body


def test_messages_after_import_use_correct_plurals(client, marketer):
    client.force_login(marketer)

    _, done = import_file(client, "email\nann@example.com\nnot-an-email\n")

    texts = message_texts(done)
    assert "Imported 1 new contact, 0 updated, 0 unchanged." in texts
    assert any(text.startswith("1 row was not imported: row 3") for text in texts)
    assert not any("1 rows" in text for text in texts)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (0, "Imported 0 new contacts, 2 updated, 1 unchanged."),
        (1, "Imported 1 new contact, 2 updated, 1 unchanged."),
        (5, "Imported 5 new contacts, 2 updated, 1 unchanged."),
    ],
)
def test_totals_message_plurals(new, expected):
    totals = {RowResult.IMPORT_TYPE_NEW: new, RowResult.IMPORT_TYPE_UPDATE: 2, "skip": 1}

    assert import_totals_message(totals) == expected


def test_column_labels_are_words():
    assert [
        column_label(c) for c in ("email", "first_name", "utm_campaign", "lifecycle_stage")
    ] == [
        "Email",
        "First name",
        "UTM campaign",
        "Lifecycle stage",
    ]


def test_preview_summary_counts_rows_in_the_singular_too():
    class Result:
        totals = {"new": 1, "update": 0, "skip": 0}
        invalid_rows = []

        def valid_rows(self):
            return [object()]

    assert (
        import_preview_summary(Result()) == "1 row will be imported: 1 new, 0 updated, 0 unchanged."
    )
