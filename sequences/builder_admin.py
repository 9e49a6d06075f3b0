"""The sequence builder page of the admin: the flow, and one form at a time beside it.

One URL, `admin/sequences/sequence/<id>/builder/`; the query says what is edited:

- ``?edit=step&pk=<id>`` a step, ``?edit=step&after=<position>&type=<type>`` a new one
  (without `type`: the list of step types);
- ``?edit=trigger&pk=<id>`` / ``?edit=trigger&type=<type>`` a trigger;
- ``?edit=goals|exits|audience`` the sequence's rules;
- ``?edit=advanced`` the sequence as YAML, which imports back (round trip).

Viewers (Sales, Customer success) see the flow and counts; POST needs change permission.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from crm.config_io import ConfigInvalid, config_import
from crm.models import Contact
from sequences.builder import sequence_flow
from sequences.builder_forms import (
    STEP_FORMS,
    TRIGGER_FORMS,
    RulesForm,
    builder_step_delete,
    builder_step_move,
    builder_step_save,
    builder_trigger_save,
)
from sequences.config_sections import sequences_export_yaml
from sequences.models import Step, Trigger
from sequences.rendering import UnsafeTemplate
from sequences.services import template_preview

STEP_HELP = {
    Step.Type.SEND_EMAIL: "An email from a template; optionally an A/B test of two templates.",
    Step.Type.WAIT_DURATION: "Minutes, hours, days or business days.",
    Step.Type.WAIT_UNTIL_TIME: "The next given time of day, in the contact's time zone.",
    Step.Type.WAIT_UNTIL_DATE: "A date property of the contact, e.g. 30 days before renewal.",
    Step.Type.WAIT_FOR_EVENT: "Until an activity happens, or a timeout: two ways on.",
    Step.Type.BRANCH_IF: "Yes or no on the contact, or on what they did since entering.",
    Step.Type.NOTIFY_OWNER: "A task, due now, for the contact's owner.",
    Step.Type.CREATE_TASK: "A task for the contact's owner or the sequence owner.",
    Step.Type.UPDATE_CONTACT: "Set the lifecycle stage, add tags, set properties.",
    Step.Type.END: "The enrollment completes here.",
}
RULES = {"goals": "Goals", "exits": "Exits", "audience": "Audience"}


class SequenceBuilderMixin:
    """Adds the builder view to SequenceAdmin (sequences/admin.py)."""

    def builder_urls(self):
        return [
            path(
                "<path:object_id>/builder/",
                self.admin_site.admin_view(self.builder_view),
                name="sequences_sequence_builder",
            )
        ]

    def response_add(self, request, obj, post_url_continue=None):
        # A new sequence has no steps yet: the next thing to do is to build them.
        if "_addanother" in request.POST or "_popup" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"“{obj}” was added as a draft: now add its trigger and steps.")
        return HttpResponseRedirect(reverse("admin:sequences_sequence_builder", args=[obj.pk]))

    def builder_view(self, request, object_id):
        sequence = self.get_object(request, object_id)
        if sequence is None:
            raise Http404("No such sequence.")
        if not self.has_view_permission(request, sequence):
            raise PermissionDenied
        can_edit = self.has_change_permission(request, sequence)
        if request.method == "POST" and not can_edit:
            raise PermissionDenied
        url = reverse("admin:sequences_sequence_builder", args=[sequence.pk])
        if request.method == "POST" and ("delete" in request.POST or "move" in request.POST):
            return self._builder_change(request, sequence, url)
        edit = request.GET.get("edit", "") if can_edit else ""
        panel = self._builder_panel(request, sequence, edit)
        if isinstance(panel, HttpResponseRedirect):
            return panel
        context = {
            **self.admin_site.each_context(request),
            "title": f"Build “{sequence}”",
            "opts": self.model._meta,
            "original": sequence,
            "flow": sequence_flow(sequence),
            "can_edit": can_edit,
            "builder_url": url,
            "change_url": reverse("admin:sequences_sequence_change", args=[sequence.pk]),
            "activate_url": reverse("admin:sequences_sequence_activate", args=[sequence.pk]),
            "edit": edit,
            "current_pk": request.GET.get("pk", ""),
            "trigger_types": [
                (value, label) for value, label in Trigger.Type.choices if value in TRIGGER_FORMS
            ],
            **panel,
        }
        form = context.get("form")
        if form is not None:
            context["media"] = self.media + form.media
        return TemplateResponse(request, "admin/sequences/sequence/builder.html", context)

    # --- Forms --------------------------------------------------------------------------

    def _builder_panel(self, request, sequence, edit: str):
        """The context of the edit panel, or a redirect once a POST saved."""
        if edit == "step":
            return self._step_panel(request, sequence)
        if edit == "trigger":
            return self._trigger_panel(request, sequence)
        if edit in RULES:
            data = request.POST if request.method == "POST" else None
            form = RulesForm(data, sequence=sequence, part=edit)
            if data is not None and form.is_valid():
                form.save()
                return self._saved(request, sequence, f"{RULES[edit]} saved.")
            return {"form": form, "panel_title": RULES[edit]}
        if edit == "advanced":
            return self._advanced_panel(request, sequence)
        return {}

    def _step_panel(self, request, sequence):
        steps = list(sequence.steps.select_related("template").order_by("position", "pk"))
        step = None
        if request.GET.get("pk"):
            step = next((s for s in steps if str(s.pk) == request.GET["pk"]), None)
            if step is None:
                raise Http404("No such step.")
        step_type = step.type if step else request.GET.get("type", "")
        after = _int(request.GET.get("after"))
        if step_type not in STEP_FORMS:
            choices = [
                (value, label, STEP_HELP.get(value, "")) for value, label in Step.Type.choices
            ]
            return {"step_types": choices, "after": after, "panel_title": "Add a step"}
        data = request.POST if request.method == "POST" else None
        form = STEP_FORMS[step_type](data, step=step, steps=steps)
        if data is not None and form.is_valid():
            try:
                saved = builder_step_save(sequence=sequence, form=form, step=step, after=after)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                return self._saved(request, sequence, f"Step “{saved.key}” saved.", saved.key)
        label = Step.Type(step_type).label
        context = {
            "form": form,
            "panel_title": f"{'Edit' if step else 'New'} step: {label}",
            "step_help": STEP_HELP.get(step_type, ""),
        }
        if step is not None and step.template is not None:
            context.update(self._email_preview(request, step))
        return context

    def _email_preview(self, request, step):
        """The step's email rendered for a contact (the first one, or ?preview_contact=id)."""
        contacts = Contact.objects.select_related("company", "owner").order_by("pk")
        chosen = _int(request.GET.get("preview_contact"))
        contact = contacts.filter(pk=chosen).first() if chosen else contacts.first()
        context = {
            "preview_contact": contact,
            "template_preview_url": reverse(
                "admin:sequences_emailtemplate_preview", args=[step.template_id]
            ),
        }
        if contact is None:
            return context
        try:
            context["preview"] = template_preview(
                template=step.template, contact=contact, sequence=step.sequence
            )
        except UnsafeTemplate as exc:
            context["preview_error"] = str(exc)
        return context

    def _trigger_panel(self, request, sequence):
        trigger = None
        if request.GET.get("pk"):
            trigger = sequence.triggers.filter(pk=_int(request.GET["pk"])).first()
            if trigger is None:
                raise Http404("No such trigger.")
        trigger_type = trigger.type if trigger else request.GET.get("type", "")
        if trigger_type not in TRIGGER_FORMS:
            return {"panel_title": "Add a trigger", "choose_trigger": True}
        data = request.POST if request.method == "POST" else None
        form = TRIGGER_FORMS[trigger_type](data, trigger=trigger)
        if data is not None and form.is_valid():
            try:
                builder_trigger_save(sequence=sequence, form=form, trigger=trigger)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                return self._saved(request, sequence, "Trigger saved.")
        title = Trigger.Type(trigger_type).label
        return {"form": form, "panel_title": f"Trigger: {title}"}

    def _advanced_panel(self, request, sequence):
        """The sequence (and the templates it sends) as YAML; importing it applies the edits."""
        text = sequences_export_yaml(sequences=[sequence])
        errors = []
        if request.method == "POST":
            text = request.POST.get("yaml", "")
            try:
                with transaction.atomic():
                    report = config_import(text, user=request.user)
                    touched = report.sections.get("sequences")
                    keys = (
                        set(touched.created + touched.updated + touched.unchanged)
                        if touched
                        else set()
                    )
                    if keys != {sequence.key}:
                        raise ConfigInvalid([])  # rolls the import back
            except ConfigInvalid as exc:
                errors = exc.errors or [
                    f"The file must keep this sequence's key ({sequence.key}); "
                    "use Import YAML for other sequences."
                ]
            else:
                return self._saved(request, sequence, "Imported from YAML.")
        return {"panel_title": "Advanced: YAML", "yaml": text, "yaml_errors": errors}

    def _saved(self, request, sequence, message: str, anchor: str = ""):
        self.message_user(request, message, messages.SUCCESS)
        url = reverse("admin:sequences_sequence_builder", args=[sequence.pk])
        return HttpResponseRedirect(url + (f"#step-{anchor}" if anchor else ""))

    def _builder_change(self, request, sequence, url):
        """POST delete=step-<pk>|trigger-<pk>, move=<pk>:up|down."""
        target = request.POST.get("delete", "")
        kind, _, pk = target.partition("-")
        if kind == "step":
            step = sequence.steps.filter(pk=_int(pk)).first()
            if step is not None:
                builder_step_delete(sequence=sequence, step=step)
                self.message_user(request, f"Step “{step.key}” deleted.")
        elif kind == "trigger":
            deleted, _ = sequence.triggers.filter(pk=_int(pk)).delete()
            if deleted:
                self.message_user(request, "Trigger deleted.")
        move = request.POST.get("move", "")
        if move:
            pk, _, direction = move.partition(":")
            step = sequence.steps.filter(pk=_int(pk)).first()
            if step is not None:
                builder_step_move(
                    sequence=sequence, step=step, offset=-1 if direction == "up" else 1
                )
        return HttpResponseRedirect(url)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _add_errors(form, exc: ValidationError) -> None:
    """Model validation errors onto the form, in words (config problems are not fields)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            for message in errors:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)
