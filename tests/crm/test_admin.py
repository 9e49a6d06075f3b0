"""The crm admin as staff use it: the contact page, saving through services, ledgers, roles."""

import datetime

import pytest
from django import forms
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from crm.admin_hooks import (
    register_contact_inline,
    register_contact_panel,
    unregister_contact_inline,
    unregister_contact_panel,
)
from crm.models import (
    Activity,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStageChange,
    Note,
    Suppression,
    Task,
)
from crm.services import consent_grant, consent_withdraw, suppression_add
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ConsentEntryFactory,
    ContactFactory,
    DealFactory,
    TaskFactory,
    UserFactory,
)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:crm_{model._meta.model_name}_{view}", args=args)


def _form_data(form) -> dict:
    """What a browser would post for the form's current values."""
    data = {}
    for bound in form:
        value, widget = bound.value(), bound.field.widget
        if isinstance(widget, forms.MultiWidget):
            parts = zip(widget.widgets_names, widget.decompress(value), strict=True)
            data.update({bound.html_name + suffix: part for suffix, part in parts if part})
        elif isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = value
    return data


def changeform_data(response, **changes) -> dict:
    """The admin change form's current values, inlines included, with `changes` applied."""
    data = _form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(_form_data(inline.formset.management_form))
        for form in inline.formset.initial_forms:
            data.update(_form_data(form))
    return {**data, **changes}


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


# --- The contact page -----------------------------------------------------------------------


@pytest.mark.django_db
def test_contact_page_shows_the_timeline_newest_first_in_pages_of_25(admin_client_):
    contact = ContactFactory()
    start = timezone.now() - datetime.timedelta(days=30)
    for day in range(30):
        ActivityFactory(
            contact=contact,
            occurred_at=start + datetime.timedelta(days=day),
            properties={"path": f"/page-{day}"},
        )

    first = admin_client_.get(_url(Contact, "change", contact.pk))
    second = admin_client_.get(_url(Contact, "change", contact.pk), {"timeline_page": 2})

    first_rows = first.context["contact_page"]["timeline"]["rows"]
    assert len(first_rows) == 25
    assert first_rows[0][0].properties == {"path": "/page-29"}
    assert "Viewed /page-29" in first.text
    assert "timeline_page=2" in first.context["contact_page"]["timeline"]["next_url"]
    second_rows = second.context["contact_page"]["timeline"]["rows"]
    assert [activity.properties["path"] for activity, _ in second_rows] == [
        f"/page-{day}" for day in range(4, -1, -1)
    ]


@pytest.mark.django_db
def test_contact_page_shows_consent_per_topic_with_its_ledger(admin_client_, superuser):
    contact = ContactFactory()
    newsletter = ConsentTopic.objects.get(key="newsletter")
    consent_grant(
        contact=contact,
        topic=newsletter,
        method=ConsentEntry.Method.FORM,
        source="pricing page form",
        ip_address="203.0.113.9",
    )
    consent_withdraw(
        contact=contact,
        topic=newsletter,
        method=ConsentEntry.Method.ADMIN,
        source="phone call",
        recorded_by=superuser,
    )

    response = admin_client_.get(_url(Contact, "change", contact.pk))

    rows = {row["topic"].key: row for row in response.context["contact_page"]["consent_topics"]}
    assert rows["newsletter"]["current"].is_granted is False
    assert len(rows["newsletter"]["entries"]) == 2
    assert rows["offers"]["current"] is None
    page = response.text
    assert "withdrawn" in page and "not asked" in page
    assert "pricing page form" in page and "203.0.113.9" in page and "phone call" in page
    assert "v1" in page  # the wording version the grant recorded


@pytest.mark.django_db
def test_contact_page_shows_an_active_suppression(admin_client_):
    contact = ContactFactory(email="bounced@example.com")
    suppression_add(email=contact.email, reason=Suppression.Reason.HARD_BOUNCE, source="esp")
    clean = ContactFactory()

    suppressed_page = admin_client_.get(_url(Contact, "change", contact.pk))
    clean_page = admin_client_.get(_url(Contact, "change", clean.pk))

    assert [s.reason for s in suppressed_page.context["contact_page"]["suppressions"]] == [
        Suppression.Reason.HARD_BOUNCE
    ]
    assert "Hard bounce" in suppressed_page.text
    assert "Not suppressed." in clean_page.text


@pytest.mark.django_db
def test_contact_page_lists_deals_with_links_and_stage_history(admin_client_):
    contact = ContactFactory()
    deal = DealFactory(contact=contact, name="Annual plan")
    admin_client_.post(
        _url(Contact, "change", contact.pk),
        changeform_data(
            admin_client_.get(_url(Contact, "change", contact.pk)),
            lifecycle_stage="opportunity",
            stage_change_reason="Demo booked",
        ),
    )

    response = admin_client_.get(_url(Contact, "change", contact.pk))

    assert _url(Deal, "change", deal.pk) in response.text
    assert "Demo booked" in response.text


# --- Saving contacts through services -------------------------------------------------------


def _new_contact_data(**fields) -> dict:
    return {
        "email": "someone@example.com",
        "lifecycle_stage": "new_lead",
        "properties": "{}",
        "source": "admin",
        "tasks-TOTAL_FORMS": "0",
        "tasks-INITIAL_FORMS": "0",
        "notes-TOTAL_FORMS": "0",
        "notes-INITIAL_FORMS": "0",
        **fields,
    }


@pytest.mark.django_db
def test_adding_a_contact_in_the_admin_normalises_the_email(admin_client_):
    response = admin_client_.post(
        _url(Contact, "add"), _new_contact_data(email="  Ann.Lee@Example.COM ", first_name="Ann")
    )

    assert response.status_code == 302
    contact = Contact.objects.get()
    assert contact.email == "ann.lee@example.com"
    assert contact.first_name == "Ann"
    assert contact.source == Contact.Source.ADMIN


@pytest.mark.django_db
def test_adding_a_contact_whose_email_exists_in_another_case_is_refused_readably(admin_client_):
    ContactFactory(email="ann@example.com")

    response = admin_client_.post(_url(Contact, "add"), _new_contact_data(email="ANN@Example.com"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "A contact with the email ann@example.com already exists."
    ]
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_changing_the_stage_in_the_admin_records_who_changed_it(admin_client_, superuser):
    contact = ContactFactory(first_name="Bo")
    page = admin_client_.get(_url(Contact, "change", contact.pk))

    response = admin_client_.post(
        _url(Contact, "change", contact.pk),
        changeform_data(
            page, lifecycle_stage="engaged_lead", stage_change_reason="Asked for pricing", phone="1"
        ),
    )

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.lifecycle_stage_id == "engaged_lead"
    assert contact.phone == "1"
    change = LifecycleStageChange.objects.get(contact=contact)
    assert (change.from_stage_id, change.to_stage_id) == ("new_lead", "engaged_lead")
    assert change.changed_by == superuser
    assert (change.source, change.reason) == ("admin", "Asked for pricing")
    assert Activity.objects.filter(contact=contact, kind="lifecycle_stage_changed").exists()


@pytest.mark.django_db
def test_saving_a_contact_without_a_stage_change_records_none(admin_client_):
    contact = ContactFactory()
    page = admin_client_.get(_url(Contact, "change", contact.pk))

    admin_client_.post(_url(Contact, "change", contact.pk), changeform_data(page, last_name="X"))

    contact.refresh_from_db()
    assert contact.last_name == "X"
    assert not LifecycleStageChange.objects.exists()


@pytest.mark.django_db
def test_a_note_added_on_the_contact_page_goes_on_the_timeline(admin_client_, superuser):
    contact = ContactFactory()
    page = admin_client_.get(_url(Contact, "change", contact.pk))
    data = changeform_data(page)
    data.update({"notes-TOTAL_FORMS": "1", "notes-0-body": "Wants a call on Monday"})

    admin_client_.post(_url(Contact, "change", contact.pk), data)

    note = Note.objects.get(contact=contact)
    assert (note.body, note.author) == ("Wants a call on Monday", superuser)
    assert Activity.objects.filter(contact=contact, kind="note_added").exists()


# --- The consent ledger and suppressions ----------------------------------------------------


@pytest.mark.django_db
def test_no_one_can_edit_or_delete_a_consent_entry_in_the_admin(admin_client_):
    entry = ConsentEntryFactory(source="original form")
    before = ConsentEntry.objects.values().get(pk=entry.pk)

    view = admin_client_.get(_url(ConsentEntry, "change", entry.pk))
    edit = admin_client_.post(
        _url(ConsentEntry, "change", entry.pk), {"source": "rewritten", "is_granted": "False"}
    )
    delete = admin_client_.post(_url(ConsentEntry, "delete", entry.pk), {"post": "yes"})

    assert view.status_code == 200
    assert (edit.status_code, delete.status_code) == (403, 403)
    assert ConsentEntry.objects.values().get(pk=entry.pk) == before


@pytest.mark.django_db
def test_consent_recorded_in_the_admin_goes_through_the_ledger_service(admin_client_, superuser):
    contact = ContactFactory()
    topic = ConsentTopic.objects.get(key="offers")

    response = admin_client_.post(
        _url(ConsentEntry, "add"),
        {
            "contact": contact.pk,
            "topic": topic.pk,
            "is_granted": "True",
            "lawful_basis": "consent",
            "source": "signed paper form",
        },
    )

    assert response.status_code == 302
    entry = ConsentEntry.objects.get(contact=contact)
    assert (entry.method, entry.recorded_by, entry.is_granted) == ("admin", superuser, True)
    assert entry.consent_text.topic == topic  # the latest wording, filled in by the service
    assert Activity.objects.filter(contact=contact, kind="consent_granted").exists()


@pytest.mark.django_db
def test_new_consent_wording_is_published_as_the_next_version(admin_client_):
    topic = ConsentTopic.objects.get(key="newsletter")

    response = admin_client_.post(
        _url(ConsentText, "add"), {"topic": topic.pk, "text": "Yes, send me the newsletter."}
    )

    assert response.status_code == 302
    assert list(topic.texts.values_list("version", flat=True)) == [2, 1]


@pytest.mark.django_db
def test_a_suppression_added_in_the_admin_records_who_added_it(admin_client_, superuser):
    response = admin_client_.post(
        _url(Suppression, "add"),
        {"email": " Mia@Example.com ", "reason": "manual", "detail": "asked by phone"},
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.source) == ("mia@example.com", "admin")
    assert suppression.created_by == superuser


@pytest.mark.django_db
def test_a_suppression_needs_an_address(admin_client_):
    response = admin_client_.post(_url(Suppression, "add"), {"email": "", "reason": "manual"})

    assert response.context["adminform"].form.errors["email"] == ["This field is required."]
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_lifting_a_complaint_suppression_is_refused_with_the_reason(admin_client_):
    complaint = suppression_add(email="angry@example.com", reason="complaint", source="esp")
    manual = suppression_add(email="oops@example.com", reason="manual", source="admin")

    response = admin_client_.post(
        _url(Suppression, "changelist"),
        {
            "action": "lift",
            "_selected_action": [complaint.pk, manual.pk],
            "lift_reason": "Added to the wrong address.",
        },
        follow=True,
    )

    assert list(Suppression.objects.all()) == [complaint]
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("only their own new consent" in message for message in shown)
    assert "Lifted 1 suppression(s)." in shown


@pytest.mark.django_db
def test_the_suppression_admin_offers_no_plain_delete(admin_client_):
    response = admin_client_.get(_url(Suppression, "changelist"))

    actions = response.context["action_form"].fields["action"].choices
    assert "delete_selected" not in [name for name, _ in actions]
    assert "lift" in [name for name, _ in actions]


# --- Deals and tasks ------------------------------------------------------------------------


@pytest.mark.django_db
def test_moving_a_deal_to_lost_without_a_reason_shows_a_form_error(admin_client_):
    deal = DealFactory()
    page = admin_client_.get(_url(Deal, "change", deal.pk))
    lost = DealStage.objects.get(key="lost")

    refused = admin_client_.post(
        _url(Deal, "change", deal.pk), changeform_data(page, stage=lost.pk, lost_reason="")
    )
    moved = admin_client_.post(
        _url(Deal, "change", deal.pk),
        changeform_data(page, stage=lost.pk, lost_reason="Chose a competitor"),
    )

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["lost_reason"] == ["Say why the deal was lost."]
    assert moved.status_code == 302
    deal.refresh_from_db()
    assert (deal.stage, deal.lost_reason) == (lost, "Chose a competitor")
    assert deal.closed_at is not None
    assert Activity.objects.filter(kind="deal_stage_changed", contact=deal.contact).exists()


@pytest.mark.django_db
def test_a_deal_added_in_the_admin_is_recorded_on_the_contact_timeline(admin_client_):
    contact = ContactFactory()
    stage = DealStage.objects.get(key="qualification")

    response = admin_client_.post(
        _url(Deal, "add"),
        {
            "name": "Pilot",
            "contact": contact.pk,
            "stage": stage.pk,
            "amount": "500",
            "currency": "EUR",
        },
    )

    assert response.status_code == 302
    assert Deal.objects.get().name == "Pilot"
    assert Activity.objects.filter(kind="deal_stage_changed", contact=contact).exists()


@pytest.mark.django_db
def test_mark_done_completes_the_selected_tasks(admin_client_):
    tasks = TaskFactory.create_batch(2)

    admin_client_.post(
        _url(Task, "changelist"),
        {"action": "mark_done", "_selected_action": [task.pk for task in tasks]},
    )

    assert set(Task.objects.values_list("status", flat=True)) == {Task.Status.DONE}
    assert all(task.completed_at for task in Task.objects.all())


# --- List filters ---------------------------------------------------------------------------


def _listed(response) -> set[str]:
    return {contact.email for contact in response.context["cl"].result_list}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("granted", {"yes@example.com"}),
        ("withdrawn", {"no@example.com"}),
        ("never", {"unasked@example.com"}),
    ],
)
def test_the_consent_filter_lists_contacts_by_their_current_consent(admin_client_, state, expected):
    newsletter = ConsentTopic.objects.get(key="newsletter")
    yes = ContactFactory(email="yes@example.com")
    no = ContactFactory(email="no@example.com")
    ContactFactory(email="unasked@example.com")
    consent_grant(contact=yes, topic=newsletter, method="form", source="test")
    consent_grant(contact=no, topic=newsletter, method="form", source="test")
    consent_withdraw(contact=no, topic=newsletter, method="one_click", source="test")

    response = admin_client_.get(_url(Contact, "changelist"), {"consent": f"newsletter:{state}"})

    assert _listed(response) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "expected"), [("yes", {"gone@example.com"}), ("no", {"ok@example.com"})]
)
def test_the_suppressed_filter_lists_contacts_by_suppression(admin_client_, value, expected):
    ContactFactory(email="gone@example.com")
    ContactFactory(email="ok@example.com")
    suppression_add(email="gone@example.com", reason="hard_bounce", source="esp")

    response = admin_client_.get(_url(Contact, "changelist"), {"suppressed": value})

    assert _listed(response) == expected


# --- Hooks for downstream apps --------------------------------------------------------------


@pytest.fixture
def score_panel():
    def render(request, contact):
        return f"<b>Score of {contact.email}</b>"

    register_contact_panel("Lead score", render)
    yield
    unregister_contact_panel("Lead score")


class ActivityHookInline(admin.TabularInline):
    model = Activity
    fields = ("kind", "occurred_at")
    extra = 0


@pytest.fixture
def activity_inline():
    register_contact_inline(ActivityHookInline)
    yield
    unregister_contact_inline(ActivityHookInline)


@pytest.mark.django_db
def test_a_registered_panel_appears_on_the_contact_page_escaped(admin_client_, score_panel):
    contact = ContactFactory(email="panel@example.com")

    response = admin_client_.get(_url(Contact, "change", contact.pk))

    assert "Lead score" in response.text
    # A plain str is escaped: only SafeString (render_to_string, format_html) is trusted.
    assert "&lt;b&gt;Score of panel@example.com&lt;/b&gt;" in response.text


@pytest.mark.django_db
def test_a_registered_inline_appears_on_the_contact_page(admin_client_, activity_inline):
    contact = ContactFactory()

    response = admin_client_.get(_url(Contact, "change", contact.pk))

    models = [inline.formset.model for inline in response.context["inline_admin_formsets"]]
    assert Activity in models


# --- Query budgets --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_contact_changelist_queries_do_not_grow_with_contacts(
    admin_client_, django_assert_max_num_queries
):
    owner = UserFactory()
    for _ in range(50):
        ContactFactory(company=CompanyFactory(), owner=owner)
    url = _url(Contact, "changelist")

    with django_assert_max_num_queries(12):
        response = admin_client_.get(url)

    assert len(response.context["cl"].result_list) == 50


@pytest.mark.django_db
def test_the_contact_page_queries_do_not_grow_with_history(
    admin_client_, django_assert_max_num_queries
):
    contact = ContactFactory(company=CompanyFactory(), owner=UserFactory())
    ActivityFactory.create_batch(60, contact=contact)
    DealFactory.create_batch(5, contact=contact)
    TaskFactory.create_batch(5, contact=contact)
    for topic in ConsentTopic.objects.all():
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    url = _url(Contact, "change", contact.pk)

    # 29 today: the header's score reasons and sequences add one query each, the
    # timeline's name look-ups one, the predictions panel two; 60 activities would show
    # as dozens more.
    with django_assert_max_num_queries(30):
        response = admin_client_.get(url)

    assert response.status_code == 200


# --- What each role may do ------------------------------------------------------------------


def _index_perms(client, model_name: str) -> dict | None:
    """What the admin index offers the logged-in user for a crm model (None: not listed)."""
    apps = client.get(reverse("admin:index")).context["app_list"]
    crm = next((app for app in apps if app["app_label"] == "crm"), {"models": []})
    return next(
        (model["perms"] for model in crm["models"] if model["object_name"] == model_name), None
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "model_name", "expected"),
    [
        ("marketer", "Deal", {"add": False, "change": False, "delete": False, "view": True}),
        ("salesperson", "Deal", {"add": True, "change": True, "delete": False, "view": True}),
        (
            "success_manager",
            "Contact",
            {"add": False, "change": True, "delete": False, "view": True},
        ),
        ("marketer", "Activity", {"add": False, "change": False, "delete": False, "view": True}),
    ],
)
def test_the_admin_index_offers_each_role_only_what_it_may_do(
    client, request, role, model_name, expected
):
    client.force_login(request.getfixturevalue(role))

    assert _index_perms(client, model_name) == expected


@pytest.mark.django_db
def test_marketing_can_view_deals_but_not_add_or_change_them(client, marketer):
    deal = DealFactory()
    client.force_login(marketer)

    change_page = client.get(_url(Deal, "change", deal.pk))
    add_page = client.get(_url(Deal, "add"))
    post = client.post(_url(Deal, "change", deal.pk), {"name": "Renamed"})

    assert change_page.status_code == 200
    assert change_page.context["has_change_permission"] is False
    assert (add_page.status_code, post.status_code) == (403, 403)
    deal.refresh_from_db()
    assert deal.name != "Renamed"


@pytest.mark.django_db
def test_sales_can_change_deals(client, salesperson):
    deal = DealFactory()
    client.force_login(salesperson)
    page = client.get(_url(Deal, "change", deal.pk))

    response = client.post(_url(Deal, "change", deal.pk), changeform_data(page, name="Renamed"))

    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.name == "Renamed"


@pytest.mark.django_db
def test_customer_success_cannot_add_contacts(client, success_manager):
    client.force_login(success_manager)

    add_page = client.get(_url(Contact, "add"))
    post = client.post(_url(Contact, "add"), _new_contact_data())

    assert (add_page.status_code, post.status_code) == (403, 403)
    assert not Contact.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["marketer", "salesperson", "success_manager"])
def test_roles_pick_owners_from_a_list_they_may_see(client, request, role):
    user = request.getfixturevalue(role)
    contact = ContactFactory()
    client.force_login(user)

    response = client.get(_url(Contact, "change", contact.pk))

    # Without auth's view_user the owner autocomplete would return nothing: use a select.
    widget = response.context["adminform"].form.fields["owner"].widget
    assert type(widget.widget if hasattr(widget, "widget") else widget) is forms.Select
