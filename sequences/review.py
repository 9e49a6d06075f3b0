"""The quality review of templates and sequences, run on save and before activation.

Errors block activation (and, for the few in template_save_errors, saving);
warnings are shown in the admin and never block.
"""

import re
from dataclasses import dataclass

from crm.conditions.evaluator import definition_is_empty
from sequences.conditions import (
    STEP_TARGET_KEYS,
    activity_condition_errors,
    contact_condition_errors,
    property_condition_errors,
    step_config_errors,
)
from sequences.models import EmailTemplate
from sequences.rendering import (
    UnsafeTemplate,
    compile_template,
    render_budget_error,
    template_tokens,
)

ERROR, WARNING = "error", "warning"
UNSUBSCRIBE_TOKEN = re.compile(r"{{\s*unsubscribe_url\b")
POSTAL_TOKEN = re.compile(r"{{\s*postal_address\b")
PRIMARY_CTA = re.compile(r"{{\s*cta_url\s*}}|data-cta=[\"']primary[\"']")


@dataclass(frozen=True)
class Finding:
    level: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.level == ERROR


# --- Templates ------------------------------------------------------------------------------


def template_save_errors(template) -> dict[str, list[str]]:
    """Problems that stop a template being saved: unsafe code, over budget, no legal content."""
    errors: dict[str, list[str]] = {}
    for field in ("subject", "preheader", "html", "text"):
        try:
            compile_template(getattr(template, field) or "")
        except UnsafeTemplate as exc:
            errors.setdefault(field, []).append(str(exc))
    for index, block in enumerate(template.blocks or []):
        errors.setdefault("blocks", []).extend(_block_errors(block, index))
    if not errors.get("blocks"):
        errors.pop("blocks", None)
    if not errors:
        # Tried with worst-case data so a template that could stall a worker never saves.
        budget_error = render_budget_error(template)
        if budget_error:
            errors["html"] = [budget_error]
    if template.is_marketing:
        _require_legal_content(template, errors)
    return errors


def _block_errors(block, index: int) -> list[str]:
    where = f"blocks[{index}]"
    if not isinstance(block, dict) or not isinstance(block.get("key"), str):
        return [f"{where} needs a key"]
    errors = contact_condition_errors(block.get("when", []), f"{where}.when")
    try:
        compile_template(block.get("html", ""))
    except UnsafeTemplate as exc:
        errors.append(f"{where}.html: {exc}")
    return errors


def _require_legal_content(template, errors: dict[str, list[str]]) -> None:
    parts = [("html", template.html)] + ([("text", template.text)] if template.text else [])
    for field, source in parts:
        if not UNSUBSCRIBE_TOKEN.search(source or ""):
            errors.setdefault(field, []).append(
                "Marketing emails must contain the unsubscribe link: {{ unsubscribe_url }}."
            )
        if not POSTAL_TOKEN.search(source or ""):
            errors.setdefault(field, []).append(
                "Marketing emails must contain the postal address: {{ postal_address }}."
            )


def template_findings(template) -> list[Finding]:
    """Every finding for a template: save errors, CTA count, subject/body, token fallbacks."""
    findings = [
        Finding(ERROR, f"{field}: {message}")
        for field, messages in template_save_errors(template).items()
        for message in messages
    ]
    findings += _cta_findings(template)
    findings += _subject_findings(template)
    findings += _fallback_findings(template)
    return findings


def _cta_findings(template) -> list[Finding]:
    count = len(PRIMARY_CTA.findall(template.html or ""))
    if not (template.cta_label and template.cta_url):
        return [Finding(ERROR, "Set the primary call to action: a label and a URL.")]
    if count == 0:
        return [Finding(ERROR, "Link the main button to {{ cta_url }}: there is no primary CTA.")]
    if count > 1:
        return [Finding(ERROR, f"Exactly one primary CTA is allowed; the email has {count}.")]
    return []


def _subject_findings(template) -> list[Finding]:
    body = {token.name for token in template_tokens(template.html or "")}
    return [
        Finding(ERROR, f"The subject uses {{{{ {token.name} }}}} but the body never mentions it.")
        for token in template_tokens(template.subject or "")
        if token.name not in body
    ]


def _fallback_findings(template) -> list[Finding]:
    sources = (template.subject, template.preheader, template.html, template.text)
    names = {
        token.name
        for source in sources
        for token in template_tokens(source or "")
        if token.is_personal and not token.has_fallback
    }
    return [
        Finding(
            ERROR,
            f'{{{{ {name} }}}} has no fallback: write {{{{ {name}|default:"…" }}}} so no one '
            "gets an email with a gap.",
        )
        for name in sorted(names)
    ]


# --- Sequences ------------------------------------------------------------------------------


def sequence_findings(sequence) -> list[Finding]:
    """Every finding for a sequence and the templates its email steps send."""
    steps = list(sequence.steps.select_related("template").order_by("position", "pk"))
    findings = _sequence_setup_findings(sequence, steps)
    findings += _condition_findings(sequence)
    findings += _step_findings(sequence, steps)
    return findings


def _sequence_setup_findings(sequence, steps) -> list[Finding]:
    findings = []
    if sequence.owner_id is None:
        findings.append(Finding(ERROR, "The sequence has no owner."))
    if not sequence.is_transactional and sequence.topic_id is None:
        findings.append(Finding(ERROR, "Choose a consent topic, or mark it transactional."))
    if not sequence.on_send_failure:
        findings.append(
            Finding(ERROR, "Choose what happens when an email cannot be sent (failure path).")
        )
    if not steps:
        findings.append(Finding(ERROR, "The sequence has no steps."))
    if not sequence.triggers.exists():
        findings.append(Finding(WARNING, "No trigger: contacts can only be enrolled by hand."))
    if definition_is_empty(sequence.goal_conditions):
        findings.append(Finding(WARNING, "No goal: nobody will ever count as converted."))
    return findings


def _condition_findings(sequence) -> list[Finding]:
    problems = contact_condition_errors(sequence.audience_conditions, "audience")
    problems += activity_condition_errors(sequence.goal_conditions, "goals")
    problems += activity_condition_errors(sequence.exit_conditions, "exits")
    for trigger in sequence.triggers.all():
        problems += property_condition_errors(trigger.conditions, f"trigger {trigger}")
    return [Finding(ERROR, problem) for problem in problems]


def _step_findings(sequence, steps) -> list[Finding]:
    keys = {step.key for step in steps}
    findings = []
    for step in steps:
        label = f"Step {step.key}"
        findings += [
            Finding(ERROR, f"{label}: {problem}")
            for problem in step_config_errors(step.type, step.config)
        ]
        for target_field in STEP_TARGET_KEYS.get(step.type, ()):
            target = step.config.get(target_field)
            if target and target not in keys:
                findings.append(Finding(ERROR, f"{label}: {target_field} {target!r} is no step."))
        if step.type == "send_email":
            findings += _email_step_findings(sequence, step, label)
    return findings


def _email_step_findings(sequence, step, label: str) -> list[Finding]:
    if step.template is None:
        return [Finding(ERROR, f"{label}: choose a template.")]
    findings = _template_use_findings(sequence, step.template, label)
    # A/B variants send their own templates: each gets the same review.
    variants = (step.config or {}).get("variants") or []
    for variant in (v for v in variants if isinstance(v, dict)):
        where = f"{label}, variant {variant.get('key')}"
        template = EmailTemplate.objects.filter(key=variant.get("template")).first()
        if template is None:
            findings.append(
                Finding(ERROR, f"{where}: there is no template {variant.get('template')!r}.")
            )
        else:
            findings += _template_use_findings(sequence, template, where)
    return findings


def _template_use_findings(sequence, template, label: str) -> list[Finding]:
    findings = [
        Finding(finding.level, f"{label} ({template.key}): {finding.message}")
        for finding in template_findings(template)
    ]
    if not sequence.is_transactional and not template.is_marketing:
        findings.append(
            Finding(ERROR, f"{label}: a marketing sequence must send marketing templates.")
        )
    return findings


def review_errors(findings: list[Finding]) -> list[str]:
    return [finding.message for finding in findings if finding.is_error]
