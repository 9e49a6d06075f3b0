"""The admin's CSV import in one pass: the preview checks every row once and keeps them;
Confirm applies the kept rows by token and re-checks only what the database may have
changed since the preview (issue #10: CSV import ≥ 5,000 rows/s)."""

import datetime

import pytest
from django.core.validators import validate_email
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import ConsentEntry, Contact, ContactImport, Suppression
from crm.services import consent_withdraw, contact_erase, suppression_add
from crm.services.imports import (
    STAGED_IMPORT_TTL,
    ContactImportRow,
    contact_import_parse,
)
from tests.crm.test_imports import SOURCE, confirm, message_texts, upload
from tests.factories import ConsentTextFactory, ContactFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db


def post_token(client, token: str, **extra):
    return client.post(
        reverse("admin:crm_contact_process_import"), {"import_token": token, **extra}, follow=True
    )


def test_the_preview_keeps_the_checked_rows_and_the_confirm_form_carries_only_a_token(
    superuser, client
):
    client.force_login(superuser)

    preview = upload(client, "email,first_name\nann@example.com,Ann\nnot-an-email,X\n")

    form = preview.context["confirm_form"]
    assert list(form.fields) == ["import_token"]
    staged = ContactImport.objects.get()
    assert form["import_token"].value() == staged.token
    assert (staged.created_by, staged.source, staged.file_name) == (
        superuser,
        SOURCE,
        "webinar.csv",
    )
    assert Contact.objects.count() == 0, "the preview writes no contact"

    done = confirm(client, preview)

    assert list(Contact.objects.values_list("email", "first_name")) == [("ann@example.com", "Ann")]
    assert not ContactImport.objects.exists(), "a confirmed import's rows are deleted"
    texts = message_texts(done)
    assert "Imported 1 new contact, 0 updated, 0 unchanged." in texts
    assert any(t.startswith("1 row was not imported: row 3: email:") for t in texts)


def test_a_token_works_once(superuser, client):
    client.force_login(superuser)
    preview = upload(client, "email\nann@example.com\n")
    token = preview.context["confirm_form"]["import_token"].value()
    post_token(client, token)

    again = post_token(client, token)

    assert Contact.objects.count() == 1
    assert any("already confirmed, has expired or is not yours" in t for t in message_texts(again))
    assert again.redirect_chain[-1][0] == reverse("admin:crm_contact_import")


def test_another_users_token_is_refused(superuser, client):
    client.force_login(superuser)
    token = upload(client, "email\nann@example.com\n").context["confirm_form"]["import_token"]
    other = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(other)

    refused = post_token(client, token.value())

    assert not Contact.objects.exists()
    assert any("is not yours" in t for t in message_texts(refused))
    assert ContactImport.objects.filter(created_by=superuser).exists(), "still the owner's"


def test_an_expired_token_is_refused_and_deleted_by_the_next_preview(superuser, client):
    client.force_login(superuser)
    token = upload(client, "email\nann@example.com\n").context["confirm_form"]["import_token"]
    ContactImport.objects.update(
        created_at=timezone.now() - STAGED_IMPORT_TTL - datetime.timedelta(1)
    )

    refused = post_token(client, token.value())
    upload(client, "email\nbob@example.com\n")

    assert not Contact.objects.exists()
    assert any("has expired" in t for t in message_texts(refused))
    assert list(ContactImport.objects.values_list("rows", flat=True)) == [
        '[[2,"bob@example.com",{},"","",[],{},"",""]]'
    ]


def test_the_options_come_from_the_preview_not_from_the_confirm_post(superuser, client):
    client.force_login(superuser)
    token = upload(client, "email\nann@example.com\n").context["confirm_form"]["import_token"]

    post_token(client, token.value(), source="Something else", consent_topic="1")

    ann = Contact.objects.get()
    assert ann.entry_point == SOURCE
    assert not ConsentEntry.objects.exists()


def test_confirm_updates_a_contact_created_since_the_preview_instead_of_duplicating_it(
    superuser, client
):
    client.force_login(superuser)
    preview = upload(
        client, "email,first_name,tags\nann@example.com,Ann,vip\nbob@example.com,Bob,\n"
    )
    assert [r.import_type for r in preview.context["result"].valid_rows()] == ["new", "new"]
    ContactFactory(email="ann@example.com", first_name="Annie", source=Contact.Source.FORM)

    done = confirm(client, preview)

    assert Contact.objects.count() == 2
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.source) == ("Ann", "form"), "updated; first touch kept"
    assert list(ann.tags.values_list("name", flat=True)) == ["vip"]
    assert "Imported 1 new contact, 1 updated, 0 unchanged." in message_texts(done)


@pytest.mark.parametrize("change", ["withdrawn", "unsubscribed_from_all", "complaint"])
def test_confirm_grants_no_consent_to_someone_who_objected_since_the_preview(
    client, marketer, change
):
    text = ConsentTextFactory()
    ann = ContactFactory(email="ann@example.com")
    client.force_login(marketer)
    preview = upload(
        client,
        "email\nann@example.com\nbob@example.com\n",
        consent_topic=text.topic.pk,
        consent_confirmed="on",
    )
    assert preview.context["result"].consent_withdrawn_rows == []
    if change == "withdrawn":
        consent_withdraw(contact=ann, topic=text.topic, method="preference_centre", source="t")
    else:
        reason = {"unsubscribed_from_all": "unsubscribed", "complaint": "complaint"}[change]
        suppression_add(email="ANN@example.com", reason=reason, source="test")

    done = confirm(client, preview)

    assert not ConsentEntry.objects.filter(contact=ann, is_granted=True).exists()
    assert ConsentEntry.objects.filter(contact__email="bob@example.com", is_granted=True).exists()
    texts = message_texts(done)
    assert any(t.startswith("Consent was not recorded for row 2:") for t in texts), texts
    assert "Recorded consent for 1 contact." in texts


def test_the_preview_names_rows_whose_address_is_suppressed_by_an_objection(client, marketer):
    text = ConsentTextFactory()
    suppression_add(email="ann@example.com", reason=Suppression.Reason.UNSUBSCRIBED, source="t")
    suppression_add(email="bob@example.com", reason=Suppression.Reason.HARD_BOUNCE, source="t")
    client.force_login(marketer)

    preview = upload(
        client,
        "email\nann@example.com\nbob@example.com\n",
        consent_topic=text.topic.pk,
        consent_confirmed="on",
    )

    assert preview.context["result"].consent_suppressed_rows == [2]
    assert "Except row 2: this address is suppressed" in " ".join(preview.content.decode().split())
    confirm(client, preview)
    granted = ConsentEntry.objects.filter(is_granted=True).values_list("email_at_time", flat=True)
    assert list(granted) == ["bob@example.com"], "a bounce is no objection; the gate stops it"


def test_an_erasure_deletes_unconfirmed_imports_naming_the_address(superuser, client):
    client.force_login(superuser)
    upload(client, "email\nada@example.com\n")
    upload(client, "email\nbob@example.com\n")
    ada = ContactFactory(email="ada@example.com")

    contact_erase(contact=ada, erased_by=superuser, requested_via="admin")

    assert [s.rows for s in ContactImport.objects.all()] == [
        '[[2,"bob@example.com",{},"","",[],{},"",""]]'
    ]


def test_a_file_without_rows_gets_a_clear_error(superuser, client):
    client.force_login(superuser)

    empty = upload(client, "email\n")

    assert "confirm_form" not in empty.context
    assert empty.context["result"].base_errors == ["The file has no rows below its header row."]
    assert "The file has no rows below its header row." in empty.content.decode()


def test_a_file_in_another_encoding_is_refused_with_a_clear_error(superuser, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(superuser)
    data = {
        "import_file": SimpleUploadedFile(
            "x.csv", "email,first_name\na@x.io,Zoë\n".encode("cp1252")
        ),
        "source": SOURCE,
        "lawful_basis": "consent",
    }

    page = client.post(reverse("admin:crm_contact_import"), data)

    assert page.context["result"].base_errors == [
        "The file is not UTF-8 text: save it as “CSV UTF-8” and upload it again."
    ]
    assert "confirm_form" not in page.context
    assert not ContactImport.objects.exists()


def test_preview_and_confirm_cost_the_same_queries_for_20_rows_as_for_900(client, marketer):
    """The query budget: constant in rows (up to a chunk of 1,000), with consent, tags,
    existing contacts and companies on both sides."""
    text = ConsentTextFactory()
    client.force_login(marketer)
    TagFactory(name="fair")

    def rows(count: int, prefix: str) -> str:
        lines = ["email,first_name,company,company_domain,tags,properties"]
        lines += [
            f'{prefix}{n}@ex.org,P{n},Co {n % 7},co{n % 7}.example,fair;t{n % 3},"{{""n"": {n}}}"'
            for n in range(count)
        ]
        return "\n".join(lines) + "\n"

    options = {"consent_topic": text.topic.pk, "consent_confirmed": "on"}
    for prefix in ("a", "b"):  # existing contacts to update on both sides
        ContactFactory(email=f"{prefix}0@ex.org")

    def measured(count, prefix):
        content = rows(count, prefix)
        with CaptureQueriesContext(connection) as captured:
            preview = upload(client, content, **options)
            confirm(client, preview)
        return [q["sql"] for q in captured.captured_queries]

    small = measured(20, "a")
    large = measured(900, "b")

    assert Contact.objects.filter(email__endswith="@ex.org").count() == 920
    assert ConsentEntry.objects.count() == 920
    if connection.vendor == "postgresql":
        assert len(large) == len(small), (len(small), len(large))
    else:
        # SQLite: the tag links and the activities are written in statements of at most
        # 999 parameters (Django's bulk_create), so 900 rows take a few more INSERTs.
        reads = [sql for sql in large if not sql.startswith("INSERT")]
        assert len(reads) == len([sql for sql in small if not sql.startswith("INSERT")])
        assert len(large) <= len(small) + 12, (len(small), len(large))


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.com",
        "a.b+c@sub.example.co.uk",
        "o'hara@example.ie",
        "x@",
        "@example.com",
        "ann@example",
        "ann@-example.com",
        "ann@example-.com",
        "ann..lee@example.com",
        ".ann@example.com",
        "ann@localhost",
        "ann@[127.0.0.1]",
        '"ann lee"@example.com',
        "ann@exa_mple.com",
        "ann@example.c",
        "ann@example.123",
        "ann@xn--bcher-kva.example",
        "jörg@example.de",
        "ann@bücher.example",
        "a" * 65 + "@example.com",
        "ann@" + "a" * 250 + ".com",
    ],
)
def test_the_lean_email_check_agrees_with_djangos_email_field(address):
    """The fast path accepts only addresses Django accepts; the rest get Django's verdict."""
    from django.core.exceptions import ValidationError

    try:
        validate_email(address)
        django_ok = len(address) <= 254
    except ValidationError:
        django_ok = False

    parsed, invalid = contact_import_parse(
        [ContactImportRow(number=2, values={"email": address})], stage_keys={"new_lead"}
    )

    assert bool(parsed) == django_ok
    if not django_ok:
        assert invalid[0][1]["email"][0] in (
            "Enter a valid email address.",
            f"Ensure this value has at most 254 characters (it has {len(address)}).",
        )


def test_cells_are_checked_with_the_model_fields_messages():
    parsed, invalid = contact_import_parse(
        [
            ContactImportRow(2, {"email": "ann@example.com", "first_name": "x" * 101}),
            ContactImportRow(3, {"email": "bob@example.com", "country": "Germany"}),
            ContactImportRow(4, {"email": "cat@example.com", "time_zone": "Mars/Base"}),
            ContactImportRow(5, {"email": "dan@example.com", "country": "de", "language": "de"}),
        ],
        stage_keys={"new_lead"},
    )

    assert dict(invalid) == {
        2: {"first_name": ["Ensure this value has at most 100 characters (it has 101)."]},
        3: {
            "country": [
                "Use a two-letter ISO country code in capitals, such as DE or US.",
                "Ensure this value has at most 2 characters (it has 7).",
            ]
        },
        4: {"time_zone": ["'Mars/Base' is not a time zone name such as Europe/Berlin."]},
    }
    assert parsed == [[5, "dan@example.com", {"language": "de"}, "DE", "", [], {}, "", ""]]


def test_a_contact_created_between_the_confirms_read_and_its_insert_is_updated(
    superuser, client, monkeypatch
):
    """Another writer wins the race for an email: the INSERT skips it (ON CONFLICT DO
    NOTHING), the import rolls back and plans again, and updates that contact."""
    from crm.services import imports

    client.force_login(superuser)
    preview = upload(client, "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n")
    load = imports._Planner._load
    calls = []

    def load_then_race(self, parsed):
        # One connection in a test: the other writer's row is made inside the import's
        # transaction right after its read, and again (as committed) before the retry.
        calls.append(1)
        if len(calls) == 2:
            Contact.objects.create(email="ann@example.com", first_name="Annie")
        load(self, parsed)
        if len(calls) == 1:
            Contact.objects.create(email="ann@example.com", first_name="Annie")

    monkeypatch.setattr(imports._Planner, "_load", load_then_race)

    done = confirm(client, preview)

    assert len(calls) == 2
    assert sorted(Contact.objects.values_list("email", "first_name")) == [
        ("ann@example.com", "Ann"),
        ("bob@example.com", "Bob"),
    ]
    assert "Imported 1 new contact, 1 updated, 0 unchanged." in message_texts(done)


def test_confirm_checks_again_that_the_user_may_record_consent(client, marketer):
    from django.contrib.auth.models import Permission

    text = ConsentTextFactory()
    client.force_login(marketer)
    preview = upload(
        client, "email\nann@example.com\n", consent_topic=text.topic.pk, consent_confirmed="on"
    )
    # Moved to a group that may import contacts but not record consent, meanwhile.
    marketer.groups.clear()
    marketer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="crm", codename__in=["add_contact", "view_contact"]
        )
    )

    done = confirm(client, preview)

    assert not Contact.objects.exists()
    assert "You may import contacts but not record consent." in message_texts(done)


def test_unconfirmed_imports_expire_hourly_even_when_no_one_uploads_again(superuser):
    from crm.schedules import registered_schedules
    from crm.services.imports import STAGED_IMPORT_TTL
    from crm.tasks import expire_staged_imports_task

    now = timezone.now()
    for token, age in (
        ("old", STAGED_IMPORT_TTL + datetime.timedelta(minutes=1)),
        ("new", datetime.timedelta(0)),
    ):
        ContactImport.objects.create(
            token=token, created_by=superuser, created_at=now - age, source="csv", rows="[]"
        )

    assert expire_staged_imports_task() == "deleted 1 expired staged imports"
    assert list(ContactImport.objects.values_list("token", flat=True)) == ["new"]
    assert any(
        spec.func == "crm.tasks.expire_staged_imports_task" for spec in registered_schedules()
    )
