"""The condition builder widget for Django forms: a JSON textarea the builder draws around.

crm/static/crm/segment_builder.js documents the JavaScript side (its API is the
`data-condition-builder` attribute and `window.NextstepConditions.attach`).
"""

import json

from django import forms
from django.contrib.auth import get_user_model
from django.utils.html import format_html, json_script

from crm.models import Activity, ConsentTopic, Contact, DealStage, LifecycleStage, Segment, Tag
from crm.segments.catalog import CONTACT_MODE, MODES, SEGMENT_ACTIVITY_KINDS, catalog_as_json

#: Tag names offered as suggestions in the builder; any name can still be typed.
TAG_LIMIT = 500
EMPTY_TREE = {"match": "all", "conditions": []}


def builder_options(*, exclude_segment: str = "") -> dict:
    """The choices the builder offers for each field, as [key, label] pairs."""
    users = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
    kinds = [kind for kind in Activity.Kind.values if kind not in SEGMENT_ACTIVITY_KINDS]
    return {
        "lifecycle_stages": list(LifecycleStage.objects.values_list("key", "name")),
        "sources": [[value, label] for value, label in Contact.Source.choices],
        "owners": [[user.username, user.get_full_name() or user.username] for user in users],
        "topics": list(ConsentTopic.objects.values_list("key", "name")),
        "deal_stages": list(
            DealStage.objects.filter(outcome=DealStage.Outcome.OPEN).values_list("key", "name")
        ),
        "segments": list(
            Segment.objects.exclude(key=exclude_segment).order_by("name").values_list("key", "name")
        ),
        "activity_kinds": [[kind, kind.replace("_", " ")] for kind in kinds],
        "tags": [[name, name] for name in Tag.objects.values_list("name", flat=True)[:TAG_LIMIT]],
    }


def builder_config(*, mode: str = CONTACT_MODE, exclude_segment: str = "") -> dict:
    """What the builder needs on the page: the mode's catalog and the options."""
    if mode not in MODES:
        raise ValueError(f"Unknown condition mode {mode!r}: use one of {', '.join(MODES)}.")
    return {
        "mode": mode,
        "catalog": catalog_as_json(mode),
        "options": builder_options(exclude_segment=exclude_segment),
    }


class ConditionBuilderWidget(forms.Textarea):
    """A condition tree's JSON with the visual builder drawn around it.

    Use it for any JSONField that holds a condition tree (crm.conditions):
    `widgets = {"condition": ConditionBuilderWidget(mode="activity")}`. The options
    are read when the widget renders, so a form class can declare it once.
    """

    def __init__(self, *args, mode: str = CONTACT_MODE, **kwargs):
        super().__init__(*args, **kwargs)
        if mode not in MODES:
            raise ValueError(f"Unknown condition mode {mode!r}: use one of {', '.join(MODES)}.")
        self.mode = mode

    def format_value(self, value):
        # A new form shows an empty group, so the builder starts with "all of".
        if value in (None, "", "null", "[]", "{}"):
            return json.dumps(EMPTY_TREE, indent=2)
        return super().format_value(value)

    def render(self, name, value, attrs=None, renderer=None):
        attrs = dict(attrs or {})
        config_id = f"{attrs.get('id', f'id_{name}')}-condition-config"
        attrs.update({"data-condition-builder": self.mode, "data-condition-config": config_id})
        textarea = super().render(name, value, attrs, renderer)
        config = json_script(builder_config(mode=self.mode), config_id)
        return format_html("{}{}", textarea, config)

    class Media:
        js = ("crm/segment_builder.js",)
        css = {"all": ("crm/segment_builder.css",)}
