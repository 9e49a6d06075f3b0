"""The template-injection corpus: staff-written template code is refused at save or inert.

Every entry is put in a template's HTML. Either the review refuses it when the template
is saved, or it renders, over real contact data and within the render budget, to output
that holds no secret, no Python object and no live markup from the data.
"""

import pytest
from django.core.exceptions import ValidationError

from sequences.rendering import RenderBudget, render_email
from tests.factories import EmailTemplateFactory
from tests.security.corpus import injected

pytestmark = pytest.mark.django_db

CORPUS = (
    "{{ settings.SECRET_KEY }}",
    "{{ contact.__class__ }}",
    "{{ contact.__dict__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ contact.email.__class__.__base__.__subclasses__ }}",
    "{{ request.META }}",
    "{{ user.password }}",
    "{{ owner.email.upper.__globals__ }}",
    "{% load static %}",
    "{% load log %}{% get_admin_log 10 as log %}",
    '{% include "admin/base.html" %}',
    '{% extends "admin/base.html" %}',
    "{% debug %}",
    '{% ssi "/etc/passwd" %}',
    "{% url 'admin:index' %}",
    "{% csrf_token %}",
    "{% templatetag openblock %}",
    "{% autoescape off %}{{ contact.first_name }}{% endautoescape %}",
    "{{ contact.first_name|safe }}",
    "{{ contact.first_name|safeseq }}",
    "{{ contact.first_name|escapejs }}",
    "{{ contact|pprint }}",
    "{% filter force_escape %}x{% endfilter %}",
    "{% lorem 999999 w %}",
    "{% widthratio 1 0 999999999 %}",
    "{% regroup contact by email as x %}",
    "{% verbatim %}{{ x }}{% endverbatim %}",
    "{% block x %}{% endblock %}",
    "{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}",
    "{% for a in contact.first_name %}{% for b in contact.last_name %}{{ a }}{% endfor %}"
    "{% endfor %}",
    "{% with x=contact.first_name|join:contact.first_name %}{{ x|join:x }}{% endwith %}",
    '{{ 1|floatformat:"99999999" }}',
    '{{ contact.first_name|truncatechars:"999999999" }}',
    '{{ contact.first_name|default:"<script>alert(1)</script>" }}',
    '{% now "U" %}',
    '{% cycle "a" "b" as c %}{{ c }}',
    "{{ contact.delete }}",
    "{{ contact.save }}",
    "{% if contact.email|length > 0 %}{{ contact.email }}{% endif %}",
    "{# {{ settings.SECRET_KEY }} #}",
    "{% comment %}{% debug %}{% endcomment %}",
)

#: Real contact data, itself hostile, as the engine receives it.
DATA = {
    "contact": {
        "email": "ada@example.com",
        "first_name": '"><script>alert("tpl")</script>' * 30,
        "last_name": "y" * 2_000,
        "properties": {"bio": "z" * 2_000},
    },
    "owner": {"email": "owner@example.com"},
    "unsubscribe_url": "https://x.test/u/1/",
    "postal_address": "Example Ltd",
    "cta_url": "https://x.test/go",
}
LEAKS = ("<class", "object at 0x", "__", "SECRET", "password", "django.")


def test_the_corpus_covers_enough_attacks():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("code", CORPUS)
def test_template_code_is_refused_at_save_or_inert(code, settings):
    template = EmailTemplateFactory.build(html=EmailTemplateFactory.html + code)

    try:
        template.full_clean()
    except ValidationError as refused:
        assert refused.message_dict.get("html"), refused.message_dict
        return

    budget = RenderBudget()
    rendered = render_email(template, DATA, budget=budget)

    output = rendered.subject + rendered.html + rendered.text
    assert settings.SECRET_KEY not in output
    assert not [leak for leak in LEAKS if leak in output]
    assert injected(rendered.html, ["tpl"]) == []
    assert budget.iterations <= budget.max_iterations and budget.chars <= budget.max_chars
