"""Trust follows the key (DESIGN invariant 8): a public browser key never makes Nextstep
email an address nobody trusted vouched for, and never answers differently for known and
unknown people (issue 9, findings 1 and 4)."""

import importlib

import pytest
from django.apps import apps
from django.core import mail
from django.utils import timezone

from crm.links import OptInRequest
from crm.models import Activity, Contact
from crm.services import Visitor
from crm.services.preferences import opt_in_confirm
from sequences.gate import evaluate
from sequences.models import Enrollment, OutboundMessage
from tests.crm.api.conftest import client_for
from tests.crm.test_admin import _new_contact_data
from tests.crm.test_imports import import_file
from tests.factories import (
    ConsentTextFactory,
    ConsentTopicFactory,
    ContactFactory,
    EmailTemplateFactory,
)
from tests.sequences.conftest import build_sequence, email_step

EVENTS = "/api/v1/events/"
IDENTIFY = "/api/v1/identify/"
VICTIM = "victim@example.org"
INJECTED = "Your account was compromised, call +1 555 0100"
ONBOARDING_HTML = (
    '<p>Hi {{ contact.first_name|default:"there" }}, welcome aboard.</p>'
    '<p><a href="{{ cta_url }}">{{ cta_label }}</a></p>'
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarding():
    """The transactional onboarding email, sent when an order is placed or a page viewed."""
    template = EmailTemplateFactory(key="welcome", html=ONBOARDING_HTML, is_marketing=False)
    for trigger in ("order_placed", "page_viewed"):
        build_sequence(
            [email_step(f"welcome-{trigger}", template=template)],
            trigger=trigger,
            is_transactional=True,
        )


@pytest.fixture
def forged_origin_client(browser_key):
    # The Origin header is whatever a script outside any browser says it is.
    return client_for(browser_key.key, HTTP_ORIGIN="https://www.example.com")


def post(client, path, body, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(path, body, format="json")


def test_the_reported_attack_sends_no_email_and_stores_no_injected_text(
    onboarding, forged_origin_client, django_capture_on_commit_callbacks
):
    identified = post(
        forged_origin_client,
        IDENTIFY,
        {"email": VICTIM, "anonymous_id": "attacker-1", "traits": {"first_name": INJECTED}},
        django_capture_on_commit_callbacks,
    )
    ordered = post(
        forged_origin_client,
        EVENTS,
        {"type": "order_placed", "email": VICTIM},
        django_capture_on_commit_callbacks,
    )
    viewed = post(
        forged_origin_client,
        EVENTS,
        {"type": "page_viewed", "email": VICTIM, "anonymous_id": "attacker-1"},
        django_capture_on_commit_callbacks,
    )

    assert (identified.status_code, ordered.status_code, viewed.status_code) == (202, 403, 200)
    assert "server key" in ordered.json()["fields"]["type"][0]
    assert mail.outbox == []
    assert not Contact.objects.filter(email=VICTIM).exists()
    assert not Contact.objects.filter(first_name__contains="compromised").exists()
    assert Activity.objects.get(kind="page_viewed").contact is None


def test_a_server_key_still_gets_its_contacts_their_transactional_email(
    onboarding, server_client, django_capture_on_commit_callbacks
):
    post(
        server_client,
        IDENTIFY,
        {"email": "ada@example.com", "traits": {"first_name": "Ada"}},
        django_capture_on_commit_callbacks,
    )
    response = post(
        server_client,
        EVENTS,
        {"type": "order_placed", "email": "ada@example.com"},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 200
    contact = Contact.objects.get(email="ada@example.com")
    assert contact.vouched_by == Contact.VouchedBy.SERVER_KEY
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]
    assert "Hi Ada" in mail.outbox[0].alternatives[0][0]


def test_a_contact_a_server_key_creates_by_event_is_vouched(server_client):
    server_client.post(EVENTS, {"type": "order_placed", "email": "new@example.com"}, format="json")

    contact = Contact.objects.get(email="new@example.com")
    assert (contact.vouched_by, contact.vouched_at is not None) == ("server_key", True)


def test_browser_events_attach_to_a_known_contact_but_never_create_one(browser_client):
    ada = ContactFactory(email="ada@example.com")

    response = browser_client.post(
        EVENTS,
        {
            "events": [
                {"type": "page_viewed", "email": "ada@example.com"},
                {"type": "page_viewed", "email": "stranger@example.com", "anonymous_id": "v-1"},
                {"type": "page_viewed", "email": "nobody@example.com"},
            ]
        },
        format="json",
    )

    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    assert sorted(
        (a.contact_id or 0, a.anonymous_id) for a in Activity.objects.filter(kind="page_viewed")
    ) == [(0, "v-1"), (ada.pk, "")]
    assert not Contact.objects.exclude(pk=ada.pk).exists()


def test_an_unvouched_contact_gets_no_email_at_all_not_even_transactional():
    contact = ContactFactory(vouched_at=None, vouched_by="")
    sequence = build_sequence([email_step("receipt")], is_transactional=True)

    decision = evaluate(contact, sequence, {"key": "receipt", "config": {}}, timezone.now())

    assert (decision.allowed, decision.reason) == (False, "unverified_address")


def test_a_browser_event_for_an_unvouched_contact_sends_nothing(
    onboarding, browser_client, django_capture_on_commit_callbacks
):
    # E.g. a contact only a browser key ever named, before vouching was recorded.
    ContactFactory(email=VICTIM, vouched_at=None, vouched_by="", first_name=INJECTED)

    post(
        browser_client,
        EVENTS,
        {"type": "page_viewed", "email": VICTIM},
        django_capture_on_commit_callbacks,
    )

    assert mail.outbox == []
    enrollment = Enrollment.objects.get()
    assert OutboundMessage.objects.filter(enrollment=enrollment).values_list(
        "reason", flat=True
    ).get() == ("unverified_address")


# --- Finding 4: the same answer whatever exists ----------------------------------------------


def answers(client, bodies: list[dict]) -> list[tuple[int, dict]]:
    return [
        (response.status_code, response.json())
        for response in (client.post(IDENTIFY, body, format="json") for body in bodies)
    ]


def test_identify_with_a_browser_key_answers_the_same_for_known_and_unknown_people(
    browser_client,
):
    ContactFactory(email="ada@example.com", external_id="user-7", first_name="")
    ContactFactory(email="grace@example.com")

    replies = answers(
        browser_client,
        [
            {"email": "ada@example.com", "anonymous_id": "v-1", "traits": {"first_name": "X"}},
            {"email": "unknown@example.com", "anonymous_id": "v-2", "traits": {"first_name": "X"}},
            {"external_id": "user-7", "anonymous_id": "v-3"},
            {"external_id": "user-unknown", "anonymous_id": "v-4"},
            {"external_id": "user-7", "email": "grace@example.com", "anonymous_id": "v-5"},
        ],
    )

    assert replies == [(202, {"status": "accepted"})] * 5
    assert Contact.objects.count() == 2
    assert Contact.objects.get(email="ada@example.com").first_name == ""


def test_browser_events_answer_the_same_for_known_and_unknown_people(browser_client):
    ContactFactory(email="ada@example.com", external_id="user-7")
    ContactFactory(email="grace@example.com")
    people = [
        {"email": "ada@example.com"},
        {"email": "unknown@example.com"},
        {"external_id": "user-7"},
        {"external_id": "user-unknown"},
        {"external_id": "user-7", "email": "grace@example.com"},
    ]

    replies = [
        browser_client.post(
            EVENTS, {"type": "page_viewed", "idempotency_key": "same", **person}, format="json"
        ).json()
        for person in people
        for _ in range(2)  # a replay must not tell a recorded event from a dropped one
    ]

    expected = {
        "recorded": 0,
        "duplicates": 0,
        "accepted": 1,
        "invalid": 0,
        "forbidden": 0,
        "results": [{"index": 0, "status": "accepted"}],
    }
    assert replies == [expected] * len(replies)


def test_identify_with_a_browser_key_ties_the_visitor_to_a_known_contact(browser_client):
    ada = ContactFactory(email="ada@example.com")
    Activity.objects.create(
        kind="page_viewed", source="test", anonymous_id="v-1", occurred_at=timezone.now()
    )

    browser_client.post(
        IDENTIFY, {"email": "ADA@example.com", "anonymous_id": "v-1"}, format="json"
    )

    assert Activity.objects.get(kind="page_viewed").contact == ada


# --- Existing contacts: the data migration ---------------------------------------------------


def test_the_migration_vouches_contacts_from_trusted_sources_only(server_key, browser_key):
    migration = importlib.import_module("crm.migrations.0010_vouch_existing_contacts")
    unvouched = {"vouched_at": None, "vouched_by": ""}
    staff = ContactFactory(source=Contact.Source.ADMIN, **unvouched)
    by_server = ContactFactory(source=Contact.Source.EVENT, **unvouched)
    by_browser = ContactFactory(source=Contact.Source.EVENT, **unvouched)
    browser_identified = ContactFactory(source=Contact.Source.API, **unvouched)
    server_created = ContactFactory(source=Contact.Source.API, **unvouched)
    for contact, key in (
        (by_server, server_key),
        (by_browser, browser_key),
        (browser_identified, browser_key),
    ):
        Activity.objects.create(
            kind="page_viewed",
            source=key.api_key.source_label,
            contact=contact,
            occurred_at=timezone.now(),
        )

    migration.vouch_existing(apps, None)

    vouched = set(Contact.objects.filter(vouched_by="existing").values_list("pk", flat=True))
    assert vouched == {staff.pk, by_server.pk, server_created.pk}


# --- Each trusted path vouches ---------------------------------------------------------------


def test_a_confirmed_sign_up_vouches_for_the_address():
    request = OptInRequest(
        email="new@example.com", topic_key="newsletter", consent_text_id=None, first_name=""
    )

    opt_in_confirm(request=request, visitor=Visitor())

    assert Contact.objects.get(email="new@example.com").vouched_by == Contact.VouchedBy.SIGN_UP


def test_staff_adding_a_contact_vouch_for_it(client, superuser):
    client.force_login(superuser)

    client.post("/admin/crm/contact/add/", _new_contact_data(email="ann@example.com"))

    assert Contact.objects.get(email="ann@example.com").vouched_by == Contact.VouchedBy.STAFF


@pytest.mark.parametrize(("with_consent", "vouched_by"), [(True, "import"), (False, "")])
def test_an_import_vouches_only_when_staff_state_consent(
    client, marketer, with_consent, vouched_by
):
    topic = ConsentTopicFactory(key="webinars")
    ConsentTextFactory(topic=topic, version=1, text="Email me about webinars.")
    client.force_login(marketer)
    options = {"consent_topic": topic.pk, "consent_confirmed": "on"} if with_consent else {}

    import_file(client, "email\nann@example.com\n", **options)

    assert Contact.objects.get(email="ann@example.com").vouched_by == vouched_by


def test_a_server_key_changing_a_contact_vouches_for_it(server_client):
    contact = ContactFactory(vouched_at=None, vouched_by="")

    server_client.patch(f"/api/v1/contacts/{contact.pk}/", {"job_title": "CTO"}, format="json")

    contact.refresh_from_db()
    assert contact.vouched_by == Contact.VouchedBy.SERVER_KEY
