"""The restricted engine, the quality review, signed links, YAML round trip and playbooks."""

import pytest
from django.core.exceptions import ValidationError

from crm.config_io import config_export, config_import
from sequences.links import unsubscribe_token, unsubscribe_token_read, unsubscribe_url
from sequences.models import EmailTemplate, Sequence
from sequences.playbooks import PLAYBOOKS, playbook_install
from sequences.rendering import UnsafeTemplate, compile_template, render_email
from sequences.services import sequence_activate
from tests.factories import ContactFactory, EmailTemplateFactory, UserFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "code",
    [
        "{% load static %}",
        '{% include "admin/base.html" %}',
        '{% extends "admin/base.html" %}',
        "{% debug %}",
        '{% ssi "/etc/passwd" %}',
        "{% url 'admin:index' %}",
        "{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_unsafe_template_code_is_refused_at_save(code):
    template = EmailTemplateFactory.build(html=EmailTemplateFactory.html + code)

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert "html" in refused.value.message_dict


def test_templates_see_plain_data_only():
    template = EmailTemplateFactory.build(
        html="{{ settings.SECRET_KEY }}|{{ contact.owner.password }}"
    )

    rendered = render_email(template, {"contact": {"first_name": "Ada"}})

    assert rendered.html == "|"
    with pytest.raises(UnsafeTemplate):
        compile_template("{{ contact.__class__ }}")


def test_marketing_template_needs_unsubscribe_link_and_postal_address():
    template = EmailTemplateFactory.build(html='<a href="{{ cta_url }}">Go</a>')

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    messages = " ".join(refused.value.message_dict["html"])
    assert "unsubscribe_url" in messages and "postal_address" in messages


def test_plain_text_is_generated_with_links_and_the_legal_footer(settings):
    template = EmailTemplateFactory.build()
    data = {
        "contact": {"first_name": "Ada"},
        "cta_url": "https://x.test/go",
        "cta_label": "Go",
        "unsubscribe_url": "https://x.test/u/1/",
        "postal_address": settings.POSTAL_ADDRESS,
    }

    rendered = render_email(template, data)

    assert "Go (https://x.test/go)" in rendered.text
    assert "Unsubscribe (https://x.test/u/1/)" in rendered.text
    assert settings.POSTAL_ADDRESS in rendered.text


def test_dynamic_blocks_show_on_conditions():
    template = EmailTemplateFactory.build(
        html=EmailTemplateFactory.html + "{{ blocks.customer }}",
        blocks=[
            {
                "key": "customer",
                "when": [{"contact": "lifecycle_stage", "op": "eq", "value": "new_customer"}],
                "html": "<p>Thanks!</p>",
            }
        ],
    )

    shown = render_email(template, {"contact": {"lifecycle_stage": "new_customer"}})
    hidden = render_email(template, {"contact": {"lifecycle_stage": "new_lead"}})

    assert "Thanks!" in shown.html and "Thanks!" not in hidden.html


def review_blocked(sequence) -> str:
    with pytest.raises(ValidationError) as refused:
        sequence_activate(sequence=sequence)
    return " ".join(refused.value.messages)


def test_review_blocks_activation_without_an_owner(clock):
    sequence = build_sequence([email_step("hello")], activate=False, owner=None)

    assert "no owner" in review_blocked(sequence)
    assert Sequence.objects.get().status == "draft"


def test_review_blocks_activation_with_two_primary_ctas(clock):
    template = EmailTemplateFactory(
        html=EmailTemplateFactory.html + '<a href="{{ cta_url }}">Again</a>'
    )
    sequence = build_sequence([email_step("hello", template=template)], activate=False)

    assert "Exactly one primary CTA" in review_blocked(sequence)


def test_review_blocks_activation_with_a_token_without_fallback(clock):
    template = EmailTemplateFactory(
        subject="News for {{ company.name }}",
        html=EmailTemplateFactory.html + "{{ company.name }}",
    )
    sequence = build_sequence([email_step("hello", template=template)], activate=False)

    assert "{{ company.name }} has no fallback" in review_blocked(sequence)


def test_review_blocks_a_subject_token_missing_from_the_body(clock):
    template = EmailTemplateFactory(subject='Hi {{ contact.last_name|default:"you" }}')
    sequence = build_sequence([email_step("hello", template=template)], activate=False)

    assert "never mentions it" in review_blocked(sequence)


def test_review_blocks_activation_without_a_failure_path(clock):
    sequence = build_sequence([email_step("hello")], activate=False, on_send_failure="")

    assert "cannot be sent" in review_blocked(sequence)


def test_unsubscribe_token_round_trip_and_tampering(newsletter):
    contact = ContactFactory()
    token = unsubscribe_token(contact, newsletter)

    request = unsubscribe_token_read(token)

    assert (request.contact_id, request.topic_key) == (contact.pk, "newsletter")
    assert unsubscribe_token_read(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert unsubscribe_url(contact, newsletter).startswith("https://nextstep.test/unsubscribe/")
    assert contact.email not in unsubscribe_url(contact, newsletter)


def test_yaml_round_trip_of_templates_and_sequences_is_identical(clock):
    owner = UserFactory(username="owner")
    for key in PLAYBOOKS:
        playbook_install(key=key, owner=owner)
    first = config_export()

    report = config_import(first)
    second = config_export()

    assert second == first
    assert not report.is_changed
    assert "email_templates:" in first and "sequences:" in first


def test_import_reports_errors_by_section_key_and_field(clock):
    text = (
        "version: 1\nsequences:\n- key: broken\n  name: Broken\n  topic: nope\n"
        "  steps:\n  - key: a\n    type: send_email\n    template: missing\n    config: {}\n"
    )

    with pytest.raises(Exception) as refused:
        config_import(text)

    message = str(refused.value)
    assert "sequences[broken].topic" in message
    assert "sequences[broken].steps[0].template" in message


@pytest.mark.parametrize("key", list(PLAYBOOKS))
def test_every_playbook_installs_and_passes_review(clock, key):
    sequence = playbook_install(key=key, owner=UserFactory())

    version = sequence_activate(sequence=sequence)

    assert version.steps
    assert EmailTemplate.objects.count() == len(PLAYBOOKS[key]["templates"])


def test_plain_text_parts_render_as_they_are_and_still_spend_the_budget(monkeypatch):
    """A part with no `{` (a fixed subject, an empty preheader) skips the engine, which
    would return it unchanged, and is still counted against the render budget."""
    from sequences import rendering
    from sequences.rendering import RenderBudget, RenderBudgetExceeded

    template = EmailTemplate(
        subject="Fixed <subject> & more", preheader="", html="<p>Hi {{ contact.first_name }}</p>"
    )
    contexts = []
    real = rendering.Context
    monkeypatch.setattr(rendering, "Context", lambda *a, **k: contexts.append(1) or real(*a, **k))

    rendered = render_email(template, {"contact": {"first_name": "Ada"}})

    assert rendered.subject == "Fixed <subject> & more"
    assert len(contexts) == 1  # the HTML only
    with pytest.raises(RenderBudgetExceeded):
        render_email(template, {"contact": {}}, budget=RenderBudget(max_chars=10))
