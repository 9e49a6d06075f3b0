"""The sequence builder's forms: one form per step type, per trigger type, and per rule set.

Each form shows the fields that type needs in plain words (a wait in minutes, hours,
days or business days; an email's template picked by search) and turns them into the
stored `config` (docs/sequences.md, "Step types"). Conditions are edited with crm's
segment builder widget; sequences/builder_conditions.py converts. The `builder_*`
functions at the end save what a form produced, keeping positions and branch targets
consistent.
"""

import json

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db import transaction

from crm.admin.segments import SegmentBuilderWidget, segment_builder_options
from crm.models import LifecycleStage, Segment
from crm.segments.catalog import catalog_as_json
from sequences.builder_conditions import (
    ACTIVITIES,
    BRANCH,
    CONTACTS,
    EVENT,
    SHAPE_FIELDS,
    NotRepresentable,
    WidgetConditionError,
    branch_config,
    conditions_to_widget,
    in_new_words,
    where_in_new_words,
    widget_to_conditions,
)
from sequences.conditions import STEP_TARGET_KEYS, step_config_errors
from sequences.models import EmailTemplate, Sequence, Step, Trigger

UNITS = [
    ("minutes", "minutes"),
    ("hours", "hours"),
    ("days", "days"),
    ("business_days", "business days (Mon–Fri)"),
]
WEEKDAY_CHOICES = [
    (0, "Mon"),
    (1, "Tue"),
    (2, "Wed"),
    (3, "Thu"),
    (4, "Fri"),
    (5, "Sat"),
    (6, "Sun"),
]
NEXT = ""


# --- Conditions through the segment builder widget ------------------------------------------


def widget_config(shape: str) -> dict:
    """The widget's catalog narrowed to what sequences evaluate for this shape, with no groups."""
    catalog = catalog_as_json()
    allowed = SHAPE_FIELDS[shape]
    fields = []
    for item in catalog["fields"]:
        if item["key"] not in allowed:
            continue
        if item["key"] == "activity":
            item = {
                **item,
                "operators": [op for op in item["operators"] if op["key"] == "at_least"],
            }
            item["help"] = "Counts one activity of this kind (leave the days empty)."
        fields.append(item)
    catalog["fields"] = fields
    catalog["limits"] = {**catalog["limits"], "depth": 1}
    return {"catalog": catalog, "options": segment_builder_options()}


class ConditionsField(forms.Field):
    """Sequence conditions edited in the segment builder widget; cleans to the stored shape."""

    def __init__(self, *, shape: str, **kwargs):
        self.shape = shape
        kwargs.setdefault("widget", SegmentBuilderWidget(builder=widget_config(shape)))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value, indent=2)

    def clean(self, value):
        try:
            definition = json.loads(value or "{}")
        except ValueError:
            raise ValidationError("The conditions are not valid JSON.") from None
        if self.required is False and not (definition or {}).get("conditions"):
            return [] if self.shape in (ACTIVITIES, CONTACTS) else None
        try:
            return widget_to_conditions(definition, shape=self.shape)
        except WidgetConditionError as exc:
            raise ValidationError(exc.messages) from None


class RawConditionsField(forms.JSONField):
    """Stored conditions the widget cannot show: edited as JSON, as before."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6, "cols": 80}))
        kwargs.setdefault(
            "help_text",
            "Shown as JSON: the builder cannot draw these conditions (docs/sequences.md).",
        )
        super().__init__(**kwargs)


def conditions_field(stored, *, shape: str, label: str, required: bool = True, help_text=""):
    """(field, initial): the widget when it can show `stored`, else a JSON textarea."""
    try:
        initial = conditions_to_widget(stored, shape=shape)
    except NotRepresentable:
        return RawConditionsField(label=label, required=required), stored
    field = ConditionsField(shape=shape, label=label, required=required, help_text=help_text)
    return field, initial


# --- Small fields -------------------------------------------------------------------------


def _template_field(label: str, required: bool) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=EmailTemplate.objects.all(),
        widget=AutocompleteSelect(Step._meta.get_field("template"), admin.site),
        label=label,
        required=required,
        help_text="Type to search templates by name, key or subject.",
    )


def _duration_split(duration) -> tuple[int | None, str]:
    """A stored duration as one amount and unit: {"days": 1, "hours": 2} → 26 hours."""
    if not isinstance(duration, dict) or not duration:
        return None, "days"
    if set(duration) == {"business_days"}:
        return duration["business_days"], "business_days"
    minutes = (
        duration.get("days", 0) * 1440 + duration.get("hours", 0) * 60 + duration.get("minutes", 0)
    )
    for unit, size in (("days", 1440), ("hours", 60)):
        if minutes and minutes % size == 0:
            return minutes // size, unit
    return minutes, "minutes"


class DurationMixin:
    def duration(self, prefix: str = "") -> dict:
        return {self.cleaned_data[f"{prefix}unit"]: self.cleaned_data[f"{prefix}amount"]}


def _target_choices(steps: list[Step], current: Step | None) -> list[tuple[str, str]]:
    choices = [(NEXT, "the next step (or the end)")]
    for number, step in enumerate(steps, start=1):
        if current is None or step.pk != current.pk:
            choices.append((step.key, f"{number}. {step.key} ({step.get_type_display()})"))
    return choices


# --- Step forms ---------------------------------------------------------------------------


class StepForm(forms.Form):
    """A step's key plus the fields of its type; `config()` is what the step stores."""

    type: str = ""
    key = forms.SlugField(
        max_length=50, help_text="A short name, unique in this sequence, e.g. welcome-email."
    )

    def __init__(self, *args, step: Step | None, steps: list[Step], **kwargs):
        self.step = step
        self.steps = steps
        config = dict(step.config or {}) if step else {}
        initial = {"key": step.key if step else "", **self.initial_from(config, step)}
        super().__init__(*args, initial={**initial, **kwargs.pop("initial", {})}, **kwargs)
        self.setup(config)

    def initial_from(self, config: dict, step: Step | None) -> dict:
        return {}

    def setup(self, config: dict) -> None:
        """Add fields that depend on the stored config or the other steps."""

    def config(self) -> dict:
        return {}

    def template(self):
        return None

    def clean_key(self):
        key = self.cleaned_data["key"]
        taken = {s.key for s in self.steps if self.step is None or s.pk != self.step.pk}
        if key in taken:
            raise ValidationError(f"Another step is already called “{key}”.")
        return key

    def clean(self):
        data = super().clean()
        if not self.errors:
            for message in step_config_errors(self.type, self.config()):
                self.add_error(None, message)
        return data

    def add_targets(self, config: dict, **labels: str) -> None:
        """A "go to" choice per branch exit (yes_step=label, …), next step by default."""
        choices = _target_choices(self.steps, self.step)
        for name, label in labels.items():
            self.fields[name] = forms.ChoiceField(label=label, choices=choices, required=False)
            self.initial[name] = config.get(name, NEXT)
        self._target_names = tuple(labels)

    def targets(self) -> dict:
        """The chosen exits, leaving out the ones left empty."""
        return {n: self.cleaned_data[n] for n in self._target_names if self.cleaned_data.get(n)}


class SendEmailForm(StepForm):
    type = Step.Type.SEND_EMAIL
    on_frequency_cap = forms.ChoiceField(
        label="If the frequency cap holds the email",
        choices=[("defer", "Send it later"), ("skip", "Skip it and go on")],
        initial="defer",
    )
    winner_by = forms.ChoiceField(
        label="A/B winner by",
        choices=[("click", "clicks"), ("goal", "conversions (the goal)")],
        initial="click",
        required=False,
    )
    split_a = forms.IntegerField(
        label="Share of version A (%)", min_value=1, max_value=99, initial=50, required=False
    )

    def initial_from(self, config, step):
        initial = {
            "template": step.template if step else None,
            "on_frequency_cap": config.get("on_frequency_cap", "defer"),
            "winner_by": config.get("winner_by", "click"),
        }
        variants = config.get("variants") or []
        if self._simple_ab(variants, step):
            initial["template_b"] = EmailTemplate.objects.filter(
                key=variants[1]["template"]
            ).first()
            initial["split_a"] = variants[0]["split"]
        return initial

    @staticmethod
    def _simple_ab(variants, step) -> bool:
        """Two variants, the first sending the step's own template: what this form edits."""
        return (
            isinstance(variants, list)
            and len(variants) == 2
            and all(isinstance(v, dict) for v in variants)
            and step is not None
            and step.template is not None
            and variants[0].get("template") == step.template.key
        )

    def setup(self, config):
        self.fields["template"] = _template_field("Email template", required=True)
        variants = config.get("variants") or []
        self.kept_variants = None
        if variants and not self._simple_ab(variants, self.step):
            # More than an A/B pair: kept as they are; the advanced view edits them.
            self.kept_variants = variants
            return
        self.fields["template_b"] = _template_field(
            "A/B test: version B's template (optional)", required=False
        )
        self.order_fields(["key", "template", "on_frequency_cap", "template_b", "split_a"])

    def template(self):
        return self.cleaned_data.get("template")

    def config(self) -> dict:
        data = self.cleaned_data
        config = {"on_frequency_cap": data.get("on_frequency_cap") or "defer"}
        if self.kept_variants is not None:
            return {**config, "variants": self.kept_variants, "winner_by": data["winner_by"]}
        template_b = data.get("template_b")
        if template_b and data.get("template"):
            split = data.get("split_a") or 50
            config["variants"] = [
                {"key": "a", "template": data["template"].key, "split": split},
                {"key": "b", "template": template_b.key, "split": 100 - split},
            ]
            config["winner_by"] = data.get("winner_by") or "click"
        return config


class WaitDurationForm(DurationMixin, StepForm):
    type = Step.Type.WAIT_DURATION
    amount = forms.IntegerField(label="Wait", min_value=1)
    unit = forms.ChoiceField(label="Unit", choices=UNITS, initial="days")

    def initial_from(self, config, step):
        amount, unit = _duration_split(config.get("duration"))
        return {"amount": amount, "unit": unit}

    def config(self) -> dict:
        return {"duration": self.duration()}


class WaitUntilBestTimeForm(StepForm):
    type = Step.Type.WAIT_UNTIL_BEST_TIME
    within_hours = forms.IntegerField(
        label="At most",
        min_value=1,
        max_value=72,
        initial=24,
        help_text="Hours to wait for the contact's best send hour (docs/predictions.md).",
    )

    def initial_from(self, config, step):
        return {"within_hours": config.get("within_hours", 24)}

    def config(self) -> dict:
        return {"within_hours": self.cleaned_data["within_hours"]}


class WaitUntilDateForm(StepForm):
    type = Step.Type.WAIT_UNTIL_DATE
    property = forms.CharField(
        label="Date property", max_length=64, help_text="A custom date property: renewal_date."
    )
    offset_days = forms.IntegerField(
        label="Days from the date", initial=0, help_text="Negative: before the date (−30)."
    )
    time = forms.TimeField(label="At", initial="09:00", widget=forms.TimeInput(format="%H:%M"))

    def initial_from(self, config, step):
        return {
            "property": config.get("property", ""),
            "offset_days": config.get("offset_days", 0),
            "time": config.get("time", "09:00"),
        }

    def config(self) -> dict:
        data = self.cleaned_data
        return {
            "property": data["property"],
            "offset_days": data["offset_days"],
            "time": data["time"].strftime("%H:%M"),
        }


class WaitUntilTimeForm(StepForm):
    type = Step.Type.WAIT_UNTIL_TIME
    time = forms.TimeField(label="Until", widget=forms.TimeInput(format="%H:%M"))
    weekdays = forms.TypedMultipleChoiceField(
        label="On",
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any day. In the contact's time zone.",
    )

    def initial_from(self, config, step):
        return {"time": config.get("time", "09:00"), "weekdays": config.get("weekdays", [])}

    def config(self) -> dict:
        config = {"time": self.cleaned_data["time"].strftime("%H:%M")}
        if self.cleaned_data.get("weekdays"):
            config["weekdays"] = self.cleaned_data["weekdays"]
        return config


class WaitForEventForm(DurationMixin, StepForm):
    type = Step.Type.WAIT_FOR_EVENT
    amount = forms.IntegerField(label="Wait at most", min_value=1)
    unit = forms.ChoiceField(label="Unit", choices=UNITS, initial="days")

    def initial_from(self, config, step):
        amount, unit = _duration_split(config.get("timeout"))
        return {"amount": amount, "unit": unit}

    def setup(self, config):
        field, initial = conditions_field(
            config.get("event"),
            shape=EVENT,
            label="The activity awaited",
            help_text="Add one condition: Activity, did at least 1 time, e.g. order_placed.",
        )
        self.fields["event"] = field
        self.initial["event"] = initial
        self.add_targets(
            config, yes_step="When it happens, go to", timeout_step="When the time is up, go to"
        )
        self.order_fields(["key", "event", "amount", "unit", "yes_step", "timeout_step"])

    def config(self) -> dict:
        data = self.cleaned_data
        config = {"event": in_new_words(data.get("event"), shape=EVENT), "timeout": self.duration()}
        return {**config, **self.targets()}


class BranchIfForm(StepForm):
    type = Step.Type.BRANCH_IF

    def setup(self, config):
        field, initial = conditions_field(
            config.get("condition") or config.get("event"),
            shape=BRANCH,
            label="If",
            help_text="One condition on the contact, or an activity done since they entered.",
        )
        self.fields["condition"] = field
        self.initial["condition"] = initial
        self.add_targets(config, yes_step="Yes: go to", no_step="No: go to")

    def config(self) -> dict:
        data = self.cleaned_data
        return {**branch_config(data.get("condition")), **self.targets()}


class NotifyOwnerForm(StepForm):
    type = Step.Type.NOTIFY_OWNER
    title = forms.CharField(
        max_length=200, required=False, help_text="Empty: sequence and contact."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def initial_from(self, config, step):
        return {"title": config.get("title", ""), "description": config.get("description", "")}

    def config(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in ("title", "description")
            if self.cleaned_data.get(name)
        }


class CreateTaskForm(StepForm):
    type = Step.Type.CREATE_TASK
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    assignee = forms.ChoiceField(
        choices=[
            ("contact_owner", "The contact's owner (else the sequence owner)"),
            ("sequence_owner", "The sequence owner"),
        ]
    )
    due_in_days = forms.IntegerField(label="Due in (days)", min_value=0, initial=1)

    def initial_from(self, config, step):
        return {
            "title": config.get("title", ""),
            "description": config.get("description", ""),
            "assignee": config.get("assignee", "contact_owner"),
            "due_in_days": config.get("due_in_days", 1),
        }

    def config(self) -> dict:
        data = self.cleaned_data
        config = {"title": data["title"], "assignee": data["assignee"]}
        config["due_in_days"] = data["due_in_days"]
        if data.get("description"):
            config["description"] = data["description"]
        return config


class UpdateContactForm(StepForm):
    type = Step.Type.UPDATE_CONTACT
    add_tags = forms.CharField(
        required=False, help_text="Tags to add, separated by commas.", max_length=500
    )
    properties = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: name = value.",
    )

    def setup(self, config):
        stages = [("", "(leave as it is)"), *LifecycleStage.objects.values_list("key", "name")]
        self.fields["lifecycle_stage"] = forms.ChoiceField(
            label="Set the lifecycle stage to", choices=stages, required=False
        )
        self.initial["lifecycle_stage"] = config.get("lifecycle_stage", "")
        self.order_fields(["key", "lifecycle_stage", "add_tags", "properties"])

    def initial_from(self, config, step):
        properties = config.get("properties") or {}
        return {
            "add_tags": ", ".join(config.get("add_tags") or []),
            "properties": "\n".join(f"{name} = {value}" for name, value in properties.items()),
        }

    def clean_properties(self):
        values = {}
        for number, line in enumerate(self.cleaned_data["properties"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValidationError(f"Line {number}: write name = value.")
            values[name.strip()] = value.strip()
        return values

    def config(self) -> dict:
        data = self.cleaned_data
        config = {}
        if data.get("lifecycle_stage"):
            config["lifecycle_stage"] = data["lifecycle_stage"]
        tags = [tag.strip() for tag in (data.get("add_tags") or "").split(",") if tag.strip()]
        if tags:
            config["add_tags"] = tags
        if data.get("properties"):
            config["properties"] = data["properties"]
        return config


class EndForm(StepForm):
    type = Step.Type.END


STEP_FORMS: dict[str, type[StepForm]] = {
    form.type: form
    for form in (
        SendEmailForm,
        WaitDurationForm,
        WaitUntilTimeForm,
        WaitUntilDateForm,
        WaitUntilBestTimeForm,
        WaitForEventForm,
        BranchIfForm,
        NotifyOwnerForm,
        CreateTaskForm,
        UpdateContactForm,
        EndForm,
    )
}


# --- Trigger forms ------------------------------------------------------------------------


class TriggerForm(forms.Form):
    type: str = ""
    #: Model fields this form sets; the others are reset to their defaults on save.
    sets: tuple[str, ...] = ()

    def __init__(self, *args, trigger: Trigger | None, **kwargs):
        self.trigger = trigger
        super().__init__(*args, initial=self.initial_from(trigger) if trigger else {}, **kwargs)
        self.setup(trigger)

    def initial_from(self, trigger: Trigger) -> dict:
        return {name: getattr(trigger, name) for name in self.sets}

    def setup(self, trigger) -> None:
        pass

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.sets}


class ActivityTriggerForm(TriggerForm):
    type = Trigger.Type.ACTIVITY

    def initial_from(self, trigger):
        return {}

    def setup(self, trigger):
        stored = (
            {"activity": trigger.activity_kind, "where": trigger.conditions}
            if trigger and trigger.activity_kind
            else None
        )
        field, initial = conditions_field(
            stored,
            shape=EVENT,
            label="When this activity is recorded",
            help_text="One condition: Activity, did at least 1 time, with optional “where”.",
        )
        self.fields["event"] = field
        self.initial["event"] = initial

    def values(self) -> dict:
        event = self.cleaned_data["event"] or {}
        if not isinstance(event, dict) or not isinstance(event.get("activity"), str):
            raise ValidationError("Name the activity, e.g. cart_abandoned.")
        return {
            "activity_kind": event["activity"],
            "conditions": where_in_new_words(event.get("where")),
        }


class LifecycleTriggerForm(TriggerForm):
    type = Trigger.Type.LIFECYCLE_STAGE
    sets = ("lifecycle_stage",)

    def setup(self, trigger):
        self.fields["lifecycle_stage"] = forms.ChoiceField(
            label="When the contact enters the stage",
            choices=list(LifecycleStage.objects.values_list("key", "name")),
        )


class SegmentTriggerForm(TriggerForm):
    type = Trigger.Type.SEGMENT_ENTERED
    sets = ("segment", "include_existing_members")
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.all(),
        widget=AutocompleteSelect(Trigger._meta.get_field("segment"), admin.site),
        label="When the contact enters the segment",
    )
    include_existing_members = forms.BooleanField(
        required=False,
        label="Also enroll the segment's current members when the sequence is first activated",
    )


class DateTriggerForm(TriggerForm):
    type = Trigger.Type.DATE_PROPERTY
    sets = ("date_property", "days_before", "is_yearly")
    date_property = forms.CharField(
        max_length=64, label="Date property", help_text="e.g. renewal_date or birthday"
    )
    days_before = forms.IntegerField(
        label="Days before the date", initial=0, help_text="Negative: days after it."
    )
    is_yearly = forms.BooleanField(required=False, label="Every year (birthdays, anniversaries)")


class ChurnRiskTriggerForm(TriggerForm):
    type = Trigger.Type.CHURN_RISK_ROSE
    sets = ("churn_risk_above",)
    churn_risk_above = forms.TypedChoiceField(
        label="When the churn risk rises above",
        choices=[(value, f"{value}%") for value in range(5, 100, 5)],
        coerce=int,
        initial=70,
    )


class ManualTriggerForm(TriggerForm):
    type = Trigger.Type.MANUAL


TRIGGER_FORMS: dict[str, type[TriggerForm]] = {
    form.type: form
    for form in (
        ActivityTriggerForm,
        LifecycleTriggerForm,
        SegmentTriggerForm,
        DateTriggerForm,
        ChurnRiskTriggerForm,
        ManualTriggerForm,
    )
}


# --- Goals, exits, audience -----------------------------------------------------------------


class RulesForm(forms.Form):
    """Goals, exits or the audience of a sequence, by `part`."""

    PARTS = {
        "goals": ("goal_conditions", ACTIVITIES, "Converted when any of these is recorded"),
        "exits": (
            "exit_conditions",
            ACTIVITIES,
            "Leaves the sequence when any of these is recorded",
        ),
        "audience": ("audience_conditions", CONTACTS, "Only contacts matching all of these"),
    }

    def __init__(self, *args, sequence: Sequence, part: str, **kwargs):
        self.sequence, self.part = sequence, part
        attribute, shape, label = self.PARTS[part]
        super().__init__(*args, **kwargs)
        field, initial = conditions_field(
            getattr(sequence, attribute), shape=shape, label=label, required=False
        )
        self.fields["conditions"] = field
        self.initial["conditions"] = initial
        if part == "audience":
            self.fields["audience_segment"] = forms.ModelChoiceField(
                queryset=Segment.objects.all(),
                widget=AutocompleteSelect(Sequence._meta.get_field("audience_segment"), admin.site),
                required=False,
                label="Only current members of the segment",
            )
            self.initial["audience_segment"] = sequence.audience_segment
            self.order_fields(["audience_segment", "conditions"])

    def save(self) -> None:
        attribute = self.PARTS[self.part][0]
        shape = self.PARTS[self.part][1]
        values = {attribute: in_new_words(self.cleaned_data["conditions"], shape=shape)}
        if self.part == "audience":
            values["audience_segment"] = self.cleaned_data["audience_segment"]
        Sequence.objects.filter(pk=self.sequence.pk).update(**values)


# --- Saving -------------------------------------------------------------------------------


@transaction.atomic
def builder_step_save(
    *, sequence: Sequence, form: StepForm, step: Step | None, after: int | None = None
) -> Step:
    """Create (after the step at position `after`, None: at the end) or update a step.

    Renaming a step rewrites the branches that point at it; positions stay 0..n-1.
    """
    steps = list(sequence.steps.order_by("position", "pk"))
    old_key = step.key if step else None
    if step is None:
        step = Step(sequence=sequence, type=form.type)
        index = len(steps) if after is None else min(after + 1, len(steps))
        steps.insert(index, step)
    else:
        steps[steps.index(step)] = step  # the form's instance, not a second copy
    step.position = steps.index(step)
    step.key = form.cleaned_data["key"]
    step.config = form.config()
    step.template = form.template()
    step.full_clean(exclude=["sequence"], validate_constraints=False)
    step.save()
    renamed = old_key is not None and old_key != step.key
    for position, item in enumerate(steps):
        if item is step:
            continue
        config = _retarget(item, old_key, step.key) if renamed else item.config
        if item.position != position or config != item.config:
            item.position, item.config = position, config
            item.save(update_fields=["position", "config"])
    return step


@transaction.atomic
def builder_step_delete(*, sequence: Sequence, step: Step) -> None:
    """Delete a step; branches that pointed at it go to their next step instead."""
    key = step.key
    step.delete()
    for position, item in enumerate(sequence.steps.order_by("position", "pk")):
        item.config = _retarget(item, key, None)
        item.position = position
        item.save(update_fields=["position", "config"])


@transaction.atomic
def builder_step_move(*, sequence: Sequence, step: Step, offset: int) -> None:
    steps = list(sequence.steps.order_by("position", "pk"))
    index = next(i for i, item in enumerate(steps) if item.pk == step.pk)
    target = max(0, min(len(steps) - 1, index + offset))
    steps.insert(target, steps.pop(index))
    for position, item in enumerate(steps):
        if item.position != position:
            item.position = position
            item.save(update_fields=["position"])


def _retarget(step: Step, old: str, new: str | None) -> dict:
    config = dict(step.config or {})
    for name in STEP_TARGET_KEYS.get(step.type, ()):
        if config.get(name) == old:
            if new:
                config[name] = new
            else:
                config.pop(name)
    return config


def builder_trigger_save(
    *, sequence: Sequence, form: TriggerForm, trigger: Trigger | None
) -> Trigger:
    """Create or update a trigger; the fields other types use go back to their defaults."""
    trigger = trigger or Trigger(sequence=sequence)
    for name in (
        "activity_kind",
        "lifecycle_stage",
        "conditions",
        "segment",
        "include_existing_members",
        "date_property",
        "days_before",
        "is_yearly",
    ):
        setattr(trigger, name, Trigger._meta.get_field(name).get_default())
    trigger.type = form.type
    for name, value in form.values().items():
        setattr(trigger, name, value)
    trigger.full_clean(exclude=["sequence"])
    trigger.save()
    return trigger
