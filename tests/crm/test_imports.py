import csv
import io

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.imports import EXPORT_ONLY_COLUMNS, IMPORT_COLUMNS, ContactResource
from crm.models import Activity, Company, ConsentEntry, Contact
from crm.services import consent_withdraw
from tests.factories import (
    CompanyFactory,
    ConsentTextFactory,
    ConsentTopicFactory,
    ContactFactory,
    TagFactory,
    UserFactory,
)

SOURCE = "Webinar 2026-10 attendee list"

GOOD_AND_BAD = """\
email,first_name,last_name,country,time_zone,lifecycle_stage,tags,consent
ann@example.com,Ann,Lee,de,Europe/Berlin,engaged_lead,webinar;VIP,yes
not-an-email,Bob,,,,,,yes
cara@example.com,Cara,,Germany,,,,yes
dan@example.com,Dan,,,Mars/Base,,,yes
eve@example.com,Eve,,,,wizard,,yes
fay@example.com,Fay,,US,,,"webinar, partner",yes
ANN@Example.com,,,,,,,yes
"""


def upload(client, content: str, file_name: str = "webinar.csv", **options):
    """Post a file to the contact import page: import-export's dry run and preview."""
    data = {
        "import_file": SimpleUploadedFile(file_name, content.encode(), content_type="text/csv"),
        "format": "0",
        "resource": "0",
        "source": SOURCE,
        "lawful_basis": ConsentEntry.LawfulBasis.CONSENT,
        **options,
    }
    return client.post(reverse("admin:crm_contact_import"), data)


def confirm(client, preview):
    """Post the preview's confirm form, as the 'Confirm import' button does."""
    form = preview.context["confirm_form"]
    data = {name: form[name].value() for name in form.fields}
    return client.post(
        reverse("admin:crm_contact_process_import"),
        {name: value for name, value in data.items() if value is not None},
        follow=True,
    )


def import_file(client, content: str, **options):
    preview = upload(client, content, **options)
    assert preview.status_code == 200
    return preview, confirm(client, preview)


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def export_rows(client) -> list[dict]:
    columns = IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS
    data = {"format": "0", "resource": "0"}
    data.update({f"contactresource_{column}": "on" for column in columns})
    response = client.post(reverse("admin:crm_contact_export"), data)
    assert response.status_code == 200, response.content[:500]
    return list(csv.DictReader(io.StringIO(streamed(response).decode("utf-8-sig"))))


def streamed(response) -> bytes:
    """The body of a streamed export, read the way a browser would: chunk by chunk."""
    assert response.streaming, "exports stream, so a million rows never sit in memory"
    return b"".join(response.streaming_content)


@pytest.fixture(params=["superuser", "marketer"])
def staff_client(request, client):
    client.force_login(request.getfixturevalue(request.param))
    return client


@pytest.mark.django_db
def test_import_saves_good_rows_and_reports_each_bad_row_with_its_number(staff_client):
    preview, done = import_file(staff_client, GOOD_AND_BAD)

    reasons = {row.number: row.error_dict for row in preview.context["result"].invalid_rows}
    assert reasons.keys() == {3, 4, 5, 6}
    assert reasons[3] == {"email": ["Enter a valid email address."]}
    assert reasons[4].keys() == {"country"}
    assert reasons[4]["country"][0] == (
        "Use a two-letter ISO country code in capitals, such as DE or US."
    )
    assert reasons[5] == {
        "time_zone": ["'Mars/Base' is not a time zone name such as Europe/Berlin."]
    }
    assert reasons[6]["lifecycle_stage"][0].startswith("There is no lifecycle stage 'wizard'; ")
    page = preview.content.decode()
    assert "4 rows that will not be imported" in page
    assert "Enter a valid email address." in page
    assert done.status_code == 200
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "ann@example.com",
        "fay@example.com",
    ]
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.country, ann.time_zone) == (
        "Ann",
        "Lee",
        "DE",
        "Europe/Berlin",
    )
    assert (ann.source, ann.country_source, ann.entry_point) == ("import", "import", SOURCE)
    assert ann.lifecycle_stage_id == "engaged_lead"
    assert sorted(ann.tags.values_list("name", flat=True)) == ["vip", "webinar"]
    assert ann.properties == {}, "an unknown column never lands in the contact"
    assert ConsentEntry.objects.count() == 0, "a 'consent' column grants nothing"
    texts = message_texts(done)
    assert "Imported 2 new contacts, 0 updated, 1 unchanged." in texts
    assert any(text.startswith("4 rows were not imported: row 3: email:") for text in texts)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        (",Ann,,,", "email", "Every row needs an email address."),
        ("ann@example.com,,big spender,,", "tags", "Tags use letters, digits, '-' and '_' only"),
        ("ann@example.com,,,[1],", "properties", "properties must be a JSON object"),
        ("ann@example.com,,,{oops,", "properties", "properties must be a JSON object"),
        ("ann@example.com,,,," + "x" * 201, "company", "Ensure this value has at most 200"),
    ],
)
def test_a_bad_cell_is_reported_under_its_column(staff_client, cells, column, reason):
    content = f"Email,First Name,Tags,Properties,Company\nbob@example.com,Bob,,,\n{cells}\n"

    preview = upload(staff_client, content)

    [invalid] = preview.context["result"].invalid_rows
    assert invalid.number == 3
    assert list(invalid.error_dict) == [column]
    assert invalid.error_dict[column][0].startswith(reason)
    assert "confirm_form" in preview.context, "the good row can still be imported"


@pytest.mark.django_db
def test_the_import_page_asks_for_the_source_and_documents_the_columns(staff_client):
    page = staff_client.get(reverse("admin:crm_contact_import"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Source of these contacts" in html
    assert "No consent: grant nothing" in html
    assert "never grants consent" in html


@pytest.mark.django_db
def test_preview_marks_rows_new_or_update_and_lists_ignored_columns(staff_client):
    ContactFactory(email="ann@example.com", first_name="Annie")

    preview = upload(staff_client, GOOD_AND_BAD)

    result = preview.context["result"]
    assert [row.import_type for row in result.valid_rows()] == ["update", "new", "skip"]
    assert result.ignored_columns == ["consent"]
    assert Contact.objects.count() == 1, "the preview writes nothing"
    page = preview.content.decode()
    assert "Ignored column:</strong> consent" in page
    assert "This import grants no consent to anyone." in page


@pytest.mark.django_db
def test_import_with_a_topic_grants_consent_with_the_stated_source_and_wording(client, marketer):
    topic = ConsentTopicFactory(key="webinars", name="Webinars")
    ConsentTextFactory(topic=topic, version=1, text="Old wording")
    current = ConsentTextFactory(topic=topic, version=2, text="Email me about webinars.")
    client.force_login(marketer)

    preview, done = import_file(
        client,
        "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\nnot-an-email,X\n",
        consent_topic=topic.pk,
        consent_confirmed="on",
    )

    assert "Email me about webinars." in preview.content.decode()
    entries = ConsentEntry.objects.order_by("email_at_time")
    assert [entry.email_at_time for entry in entries] == ["ann@example.com", "bob@example.com"]
    for entry in entries:
        assert entry.is_granted
        assert entry.topic == topic
        assert entry.method == ConsentEntry.Method.IMPORT
        assert entry.source == f"{SOURCE} (file webinar.csv)"
        assert entry.consent_text == current
        assert entry.lawful_basis == ConsentEntry.LawfulBasis.CONSENT
        assert entry.recorded_by == marketer
    assert Activity.objects.filter(kind="consent_granted").count() == 2
    assert "Recorded consent for 2 contacts." in message_texts(done)


@pytest.mark.django_db
def test_a_chosen_topic_must_be_confirmed(staff_client):
    topic = ConsentTextFactory().topic

    preview = upload(
        staff_client, "email\nann@example.com\n", consent_topic=topic.pk, consent_confirmed=""
    )

    assert "consent_confirmed" in preview.context["form"].errors
    assert "result" not in preview.context
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_a_topic_without_published_wording_cannot_be_granted(staff_client):
    topic = ConsentTopicFactory()

    preview = upload(
        staff_client, "email\nann@example.com\n", consent_topic=topic.pk, consent_confirmed="on"
    )

    assert preview.context["form"].errors["consent_topic"] == [
        "Publish this topic's consent wording first."
    ]


@pytest.mark.django_db
def test_staff_who_may_not_record_consent_import_contacts_but_not_consent(client, salesperson):
    topic = ConsentTextFactory().topic
    client.force_login(salesperson)

    refused = upload(
        client, "email\nann@example.com\n", consent_topic=topic.pk, consent_confirmed="on"
    )
    _, done = import_file(client, "email\nann@example.com\n")

    assert refused.context["form"].errors["consent_topic"] == [
        "You may import contacts but not record consent."
    ]
    assert Contact.objects.filter(email="ann@example.com").exists()
    assert ConsentEntry.objects.count() == 0


@pytest.mark.django_db
def test_an_import_never_overrides_a_withdrawal(client, marketer):
    topic = ConsentTextFactory().topic
    contact = ContactFactory(email="ann@example.com")
    consent_withdraw(contact=contact, topic=topic, method="preference_centre", source="test")
    client.force_login(marketer)

    preview, done = import_file(
        client,
        "email\nann@example.com\nbob@example.com\n",
        consent_topic=topic.pk,
        consent_confirmed="on",
    )

    assert preview.context["result"].consent_withdrawn_rows == [2]
    latest = ConsentEntry.objects.filter(contact=contact).order_by("-occurred_at", "-pk").first()
    assert not latest.is_granted
    assert ConsentEntry.objects.filter(contact__email="bob@example.com", is_granted=True).exists()
    assert any("Consent was not recorded for row 2:" in text for text in message_texts(done))


@pytest.mark.django_db
def test_reimporting_the_same_file_changes_nothing(client, marketer):
    topic = ConsentTextFactory().topic
    content = (
        "email,first_name,company,company_domain,tags,properties\n"
        'ann@example.com,Ann,Acme,acme.example,vip,"{""plan"": ""pro""}"\n'
        "bob@example.com,Bob,,,,\n"
    )
    options = {"consent_topic": topic.pk, "consent_confirmed": "on"}
    client.force_login(marketer)
    import_file(client, content, **options)

    preview, done = import_file(client, content.replace("ann@", "ANN@"), **options)

    assert [row.import_type for row in preview.context["result"].valid_rows()] == ["skip", "skip"]
    assert Contact.objects.count() == 2
    assert Company.objects.count() == 1
    assert ConsentEntry.objects.count() == 2
    ann = Contact.objects.get(email="ann@example.com")
    assert ann.company.domain == "acme.example"
    assert ann.properties == {"plan": "pro"}
    assert "Imported 0 new contacts, 0 updated, 2 unchanged." in message_texts(done)


@pytest.mark.django_db
def test_a_file_with_only_bad_rows_offers_no_confirm_step(staff_client):
    preview = upload(staff_client, "email\nnot-an-email\n")

    assert "confirm_form" not in preview.context
    assert "No row can be imported." in preview.content.decode()


@pytest.mark.django_db
def test_a_file_without_an_email_column_is_refused(staff_client):
    preview = upload(staff_client, "first_name\nAnn\n")

    assert preview.context["result"].has_errors()
    assert "confirm_form" not in preview.context


@pytest.mark.django_db
def test_export_escapes_cells_that_a_spreadsheet_would_run(staff_client):
    ContactFactory(
        email="mallory@example.com",
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="+1",
        job_title="-2",
        company=CompanyFactory(name="@SUM(A1:A9)"),
        phone="+49 30 1234",
        lead_score=-5,
    )

    [row] = export_rows(staff_client)

    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["last_name"] == "'+1"
    assert row["job_title"] == "'-2"
    assert row["company"] == "'@SUM(A1:A9)"
    assert row["phone"] == "'+49 30 1234"
    assert row["lead_score"] == "-5", "numbers are not text, so they are left alone"


@pytest.mark.django_db
def test_an_exported_file_imports_back_unchanged(staff_client):
    contact = ContactFactory(
        email="ann@example.com",
        first_name="=Ann",
        phone="+49 30 1234",
        company=CompanyFactory(name="Acme", domain="acme.example"),
        properties={"plan": "pro"},
    )
    contact.tags.add(TagFactory(name="vip"))
    exported = staff_client.post(
        reverse("admin:crm_contact_export"),
        {"format": "0", "resource": "0", **{f"contactresource_{c}": "on" for c in IMPORT_COLUMNS}},
    )
    exported = streamed(exported).decode("utf-8-sig")

    preview, _ = import_file(staff_client, exported)

    assert [row.import_type for row in preview.context["result"].valid_rows()] == ["skip"]
    contact.refresh_from_db()
    assert (contact.first_name, contact.phone) == ("=Ann", "+49 30 1234")


@pytest.mark.django_db
def test_export_of_50_contacts_takes_a_bounded_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    owner = UserFactory()
    tags = [TagFactory(name="vip"), TagFactory(name="webinar")]
    for _ in range(50):
        contact = ContactFactory(company=CompanyFactory(), owner=owner)
        contact.tags.add(*tags)

    with django_assert_max_num_queries(10):
        rows = export_rows(staff_client)

    assert len(rows) == 50
    assert rows[0]["tags"] == "vip,webinar"
    assert rows[0]["owner"] == owner.username


@pytest.mark.django_db
def test_the_fast_export_renders_each_cell_as_the_resource_does():
    owner = UserFactory()
    for index, name in enumerate(["=Ann", "Bob"]):
        contact = ContactFactory(
            first_name=name,
            company=CompanyFactory(domain=f"c{index}.example") if index else None,
            owner=owner if index else None,
            properties={"b": 1, "a": [2]} if index else {},
            lead_score=-5,
            source="form",
            country="DE",
        )
        contact.tags.add(TagFactory(name=f"tag{index}"), TagFactory(name="zz"))
    resource = ContactResource()
    queryset = Contact.objects.order_by("pk")

    fast = list(resource.export_rows(queryset))

    assert fast == [resource.export_resource(contact) for contact in queryset]
    assert fast[1][resource.get_export_headers().index("owner")] == owner.username


def many_rows(count: int, bad_every: int = 0) -> str:
    lines = ["email,first_name,company,company_domain,country"]
    for index in range(count):
        email = "broken" if bad_every and index % bad_every == bad_every - 1 else f"p{index}@ex.org"
        lines.append(f"{email},Person{index},Co {index % 7},co{index % 7}.example,DE")
    return "\n".join(lines) + "\n"


@pytest.mark.django_db
def test_a_big_preview_shows_the_first_rows_and_every_invalid_one(superuser, client):
    from crm.imports import PREVIEW_ROWS

    client.force_login(superuser)
    preview = upload(client, many_rows(PREVIEW_ROWS + 150, bad_every=50))

    page = preview.content.decode()
    shown = page.count('<td class="import-type">')
    assert shown == PREVIEW_ROWS, "only the first rows are rendered, not the whole file"
    assert f"The first {PREVIEW_ROWS} of {PREVIEW_ROWS + 145} rows" in page
    # Every invalid row is listed, those past the preview's rows too (rows 51, 101, …, 251).
    assert [row.number for row in preview.context["result"].invalid_rows] == list(
        range(51, PREVIEW_ROWS + 152, 50)
    )
    assert f"{PREVIEW_ROWS + 145} rows will be imported" in page


@pytest.mark.django_db
def test_confirming_an_import_writes_one_admin_log_entry_with_its_totals(superuser, client):
    from django.contrib.admin.models import ADDITION, LogEntry

    client.force_login(superuser)
    import_file(client, many_rows(30, bad_every=10))

    assert Contact.objects.filter(email__endswith="@ex.org").count() == 27
    entry = LogEntry.objects.get()
    assert entry.user == superuser
    assert entry.action_flag == ADDITION
    assert entry.object_repr == "CSV import webinar.csv"
    assert "Imported 27 new contacts, 0 updated, 0 unchanged." in entry.change_message
    assert SOURCE in entry.change_message
    assert "3 invalid rows left out" in entry.change_message


@pytest.mark.django_db
def test_an_admin_import_costs_the_same_queries_for_50_rows_as_for_500(superuser, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    counts = []
    for rows, tag in ((50, "a"), (500, "b")):
        content = many_rows(rows).replace("@ex.org", f"@{tag}.ex.org")
        with CaptureQueriesContext(connection) as queries:
            import_file(client, content)
        counts.append(len(queries))
    assert Contact.objects.count() == 550
    # One chunk of rows either way (crm.services.imports.CHUNK_SIZE): only the number of
    # INSERT statements may differ, and at 500 rows they do not.
    assert counts[1] <= counts[0] + 2, counts
