"""The condition builder widget: any JSON field gets the builder through one attribute."""

import json
import re
from html import unescape
from pathlib import Path

import pytest
from django import forms

from crm.conditions.widget import ConditionBuilderWidget, builder_config

pytestmark = pytest.mark.django_db


class _Form(forms.Form):
    condition = forms.JSONField(widget=ConditionBuilderWidget(mode="activity"))


def test_the_widget_marks_its_textarea_with_the_mode_and_embeds_the_mode_catalog():
    html = str(_Form(initial={"condition": None})["condition"])

    assert 'data-condition-builder="activity"' in html
    assert 'data-condition-config="id_condition-condition-config"' in html
    config_json = re.search(
        r'<script id="id_condition-condition-config" type="application/json">(.*?)</script>', html
    ).group(1)
    config = json.loads(config_json)
    assert config["mode"] == "activity"
    assert [field["key"] for field in config["catalog"]["fields"]] == ["kind", "property"]
    assert '"match": "all"' in unescape(html)  # an empty value starts as an empty "all of" group


def test_the_contact_mode_offers_the_segment_fields():
    config = builder_config(mode="contact")

    keys = {field["key"] for field in config["catalog"]["fields"]}
    assert {"lifecycle_stage", "tags", "activity", "company_industry", "email_domain"} <= keys


def test_an_unknown_mode_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="contact, activity"):
        ConditionBuilderWidget(mode="deal")


def test_the_script_documents_its_entry_points():
    from django.contrib.staticfiles import finders

    script = Path(finders.find("crm/segment_builder.js")).read_text(encoding="utf-8")

    assert "data-condition-builder" in script
    assert "window.NextstepConditions = { attach: attach }" in script
