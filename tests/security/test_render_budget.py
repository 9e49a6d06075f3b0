"""Finding 3: rendering has a budget enforced while it renders, at save, preview and send."""

import itertools
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from sequences.models import EmailTemplate, Enrollment, OutboundMessage, Sequence
from sequences.rendering import (
    MAX_LOOP_ITERATIONS,
    RenderBudget,
    RenderBudgetExceeded,
    UnsafeTemplate,
    render_email,
)
from sequences.services import enrollment_create
from tests.factories import ContactFactory, EmailTemplateFactory
from tests.sequences.conftest import build_sequence, email_step, run

pytestmark = pytest.mark.django_db

#: The finding's template: two nested loops over 2,000-character values.
STALLING = (
    "{% for a in contact.properties.bio %}{% for b in contact.properties.bio %}{{ a }}{{ b }}"
    "{% endfor %}{% endfor %}"
)
LONG_BIO = {"bio": "y" * 2_000}


def stalling_template(**fields) -> EmailTemplate:
    """Saved without the review, as an older row or a direct database write would be."""
    return EmailTemplateFactory(html=EmailTemplateFactory.html + STALLING, **fields)


def test_the_stalling_template_is_refused_at_save_with_a_clear_message():
    template = EmailTemplateFactory.build(html=EmailTemplateFactory.html + STALLING)

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    message = " ".join(refused.value.message_dict["html"])
    assert "too expensive to render" in message
    assert "loop iterations" in message


def test_an_empty_nested_loop_is_refused_too():
    template = EmailTemplateFactory.build(
        html=EmailTemplateFactory.html
        + "{% for a in contact.x %}{% for b in contact.y %}{% endfor %}{% endfor %}"
    )

    with pytest.raises(ValidationError):
        template.full_clean()


@pytest.mark.parametrize(
    "code",
    [
        "{% with x=contact.a|join:contact.a %}{{ x|join:x }}{% endwith %}",
        "{% with x=contact.a|join:contact.a %}{% if x|join:x %}y{% endif %}{% endwith %}",
        "{% for a in contact.a %}{{ contact.b }}{{ contact.c }}{% endfor %}",
    ],
)
def test_output_that_multiplies_is_refused_at_save(code):
    template = EmailTemplateFactory.build(html=EmailTemplateFactory.html + code)

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert "characters of output" in " ".join(refused.value.message_dict["html"])


def test_ordinary_loops_still_save_and_render():
    template = EmailTemplateFactory.build(
        html=EmailTemplateFactory.html
        + "{% for item in trigger.items %}{{ item.name|default:'an item' }}{% endfor %}"
    )

    template.full_clean()
    rendered = render_email(template, {"trigger": {"items": [{"name": "Tea"}, {"name": "Pot"}]}})

    assert "TeaPot" in rendered.html


def test_rendering_stops_inside_the_loops_not_after_them():
    budget = RenderBudget()

    with pytest.raises(RenderBudgetExceeded, match="loop iterations"):
        render_email(stalling_template(), {"contact": {"properties": LONG_BIO}}, budget=budget)

    # 4,002,000 iterations were asked for; rendering stopped at the first one over budget.
    assert budget.iterations == MAX_LOOP_ITERATIONS + 1


def test_rendering_stops_at_the_deadline():
    ticks = itertools.count()
    template = EmailTemplateFactory.build(html="{% for a in trigger.text %}{{ a }}{% endfor %}")

    # The clock (a true boundary) moves 0.1 s every time the budget looks at it.
    with (
        mock.patch("sequences.rendering.time.monotonic", lambda: next(ticks) / 10),
        pytest.raises(RenderBudgetExceeded, match="s of rendering"),
    ):
        render_email(template, {"trigger": {"text": "z" * 500}})


def test_preview_of_an_over_budget_template_answers_with_the_reason(client, superuser):
    template = stalling_template()
    contact = ContactFactory(properties=LONG_BIO)
    client.force_login(superuser)
    url = reverse("admin:sequences_emailtemplate_preview", args=[template.pk])

    response = client.post(url, {"contact": contact.pk}, secure=True, follow=True)

    assert response.status_code == 200
    assert "too expensive to render" in response.content.decode()


def test_a_send_over_budget_fails_that_message_to_the_failure_path(
    clock, consenting_contact, mailoutbox
):
    template = EmailTemplateFactory(key="stalls")
    sequence = build_sequence(
        [email_step("hello", template=template), email_step("next")],
        on_send_failure=Sequence.OnSendFailure.CONTINUE,
    )
    # Changed after activation without the review (a direct database write).
    EmailTemplate.objects.filter(pk=template.pk).update(html=template.html + STALLING)
    consenting_contact.properties = LONG_BIO
    consenting_contact.save()
    enrollment_create(contact=consenting_contact, sequence=sequence)

    run(clock)

    failed = OutboundMessage.objects.get(step="hello")
    assert failed.state == OutboundMessage.State.SKIPPED
    assert "too expensive to render" in failed.reason
    # The worker moved on: the next step still went out.
    assert OutboundMessage.objects.get(step="next").state == OutboundMessage.State.SENT
    assert Enrollment.objects.get().state in {"completed", "active"}


def test_a_filter_that_raises_fails_the_render_not_the_worker():
    template = EmailTemplateFactory.build(html='{{ 1|floatformat:"99999999" }}')

    with pytest.raises(UnsafeTemplate, match="cannot be rendered"):
        render_email(template, {})


def test_variables_as_filter_arguments_still_save():
    template = EmailTemplateFactory.build(
        html=EmailTemplateFactory.html
        + "{{ contact.company.name|default:contact.first_name|default:'you' }}"
    )

    template.full_clean()
