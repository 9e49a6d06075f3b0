"""Starter playbooks: working sequences from the customer journey, with their templates.

Each playbook is written in the configuration file's format (docs/sequences.md), so
installing one is the same validated, idempotent import as `import_config`.
Installed sequences are drafts: review, then activate.
"""

from django.core.exceptions import ValidationError

from crm.config_io import ConfigInvalid, config_import
from sequences.models import Sequence

FOOTER = (
    '<p style="font-size:12px;color:#666">{{ postal_address }}<br>'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _email(key: str, subject: str, body: str, cta_label: str, cta_url: str, *, marketing=True):
    footer = (
        FOOTER if marketing else '<p style="font-size:12px;color:#666">{{ postal_address }}</p>'
    )
    html = (
        '<p>Hi {{ contact.first_name|default:"there" }},</p>'
        f"<p>{body}</p>"
        '<p><a href="{{ cta_url }}" data-cta="button">{{ cta_label }}</a></p>'
        f"{footer}"
    )
    return {
        "key": key,
        "name": subject,
        "subject": subject,
        "preheader": "",
        "html": html,
        "text": "",
        "cta_label": cta_label,
        "cta_url": cta_url,
        "blocks": [],
        "is_marketing": marketing,
    }


def _send(key: str, template: str, **config) -> dict:
    return {"key": key, "type": "send_email", "template": template, "config": config}


def _wait(key: str, **duration) -> dict:
    return {"key": key, "type": "wait_duration", "template": None, "config": {"duration": duration}}


def _step(key: str, step_type: str, **config) -> dict:
    return {"key": key, "type": step_type, "template": None, "config": config}


def _sequence(key, name, *, topic, triggers, steps, goals=None, exits=None, audience=None, **extra):
    return {
        "key": key,
        "name": name,
        "description": extra.pop("description", ""),
        "topic": topic,
        "is_transactional": topic is None,
        "on_send_failure": extra.pop("on_send_failure", "continue"),
        "reenrollment": extra.pop("reenrollment", "after_exit"),
        "reenrollment_min_gap_days": extra.pop("gap", 30),
        "max_duration_days": extra.pop("max_days", 90),
        "audience": audience or {},
        "goals": goals or {},
        "exits": exits or {},
        "triggers": list(triggers),
        "steps": list(steps),
        **extra,
    }


def _on(kind: str, **where) -> dict:
    conditions = [
        {"field": "property", "key": key, "operator": "equals", "value": value}
        for key, value in where.items()
    ]
    return {
        "type": "activity",
        "activity_kind": kind,
        "lifecycle_stage": "",
        "conditions": {"match": "all", "conditions": conditions} if conditions else {},
    }


def _did(*kinds: str) -> dict:
    """Goals, exits or an awaited event: an activity of one of these kinds."""
    return {"match": "any", "conditions": [{"field": "kind", "operator": "in", "value": [*kinds]}]}


def _all(*conditions: dict) -> dict:
    return {"match": "all", "conditions": [*conditions]}


SITE = "https://www.example.com"
HANDED_OFF = _did("handed_off")
ORDER = _did("order_placed")

PLAYBOOKS = {
    "welcome-guide": {
        "name": "Welcome: guide download",
        "templates": [
            _email(
                "welcome-guide-1",
                "Your guide is here",
                "Thanks for downloading our guide.",
                "Read the guide",
                f"{SITE}/guide",
            ),
            _email(
                "welcome-guide-2",
                "Put the guide to work",
                "Three ways teams use what the guide describes.",
                "See examples",
                f"{SITE}/examples",
            ),
        ],
        "sequence": _sequence(
            "welcome-guide",
            "Welcome: guide download",
            topic="newsletter",
            triggers=[_on("content_downloaded")],
            goals=_did("demo_requested"),
            exits=HANDED_OFF,
            steps=[
                _send("guide", "welcome-guide-1"),
                _wait("wait-3d", days=3),
                _send("examples", "welcome-guide-2"),
            ],
        ),
    },
    "welcome-signup": {
        "name": "Welcome: homepage sign-up",
        "templates": [
            _email(
                "welcome-signup-1",
                "Welcome aboard",
                "Here is how to get started in 5 minutes.",
                "Get started",
                f"{SITE}/start",
            ),
        ],
        "sequence": _sequence(
            "welcome-signup",
            "Welcome: homepage sign-up",
            topic="newsletter",
            triggers=[_on("signed_up")],
            goals=_did("onboarding_milestone_reached"),
            steps=[_send("welcome", "welcome-signup-1")],
        ),
    },
    "abandoned-cart": {
        "name": "Abandoned cart",
        "templates": [
            _email(
                "cart-1",
                "You left something behind",
                "Your cart is saved for you.",
                "Back to your cart",
                f"{SITE}/cart",
            ),
            _email(
                "cart-2",
                "Still thinking it over?",
                "Questions? Reply and we will help.",
                "Finish your order",
                f"{SITE}/cart",
            ),
            _email(
                "cart-3",
                "10% off to finish your order",
                "Use code COMEBACK10 at checkout in the next 48 hours.",
                "Use my discount",
                f"{SITE}/cart?code=COMEBACK10",
            ),
        ],
        "sequence": _sequence(
            "abandoned-cart",
            "Abandoned cart",
            topic="offers",
            triggers=[
                {
                    **_on("cart_abandoned"),
                    "conditions": _all(
                        {"field": "property", "key": "value", "operator": "gte", "value": 20}
                    ),
                }
            ],
            goals=ORDER,
            gap=7,
            max_days=14,
            steps=[
                _wait("wait-3h", hours=3),
                _send("cart-1", "cart-1"),
                _wait("wait-1d", days=1),
                _send("cart-2", "cart-2"),
                _wait("wait-2d", days=2),
                _send("cart-3", "cart-3", on_frequency_cap="skip"),
            ],
        ),
    },
    "onboarding": {
        "name": "Post-purchase onboarding (30 days)",
        "templates": [
            _email(
                "onboarding-1",
                "Welcome: your first step",
                "Set up your account in minutes.",
                "Set up now",
                f"{SITE}/setup",
                marketing=False,
            ),
            _email(
                "onboarding-help",
                "Need a hand getting started?",
                "These short guides cover what most new customers ask.",
                "Open the guides",
                f"{SITE}/help",
                marketing=False,
            ),
        ],
        "sequence": _sequence(
            "onboarding",
            "Post-purchase onboarding",
            topic=None,
            triggers=[_on("order_placed")],
            goals=_did("onboarding_milestone_reached"),
            max_days=30,
            steps=[
                _send("welcome", "onboarding-1"),
                _step(
                    "milestone",
                    "wait_for_event",
                    event=_did("onboarding_milestone_reached"),
                    timeout={"days": 7},
                    timeout_step="help",
                ),
                _send("help", "onboarding-help"),
                _step(
                    "call",
                    "create_task",
                    title="Onboarding milestone missed: call this customer",
                    assignee="contact_owner",
                    due_in_days=1,
                ),
            ],
        ),
    },
    "re-engagement": {
        "name": "Re-engagement and sunset",
        "templates": [
            _email(
                "reengage-1",
                "Still want to hear from us?",
                "Click below to keep getting our emails.",
                "Keep me subscribed",
                f"{SITE}/stay",
            ),
        ],
        "sequence": _sequence(
            "re-engagement",
            "Re-engagement after 90 days",
            topic="newsletter",
            triggers=[_on("segment_entered", segment="inactive-90-days")],
            goals=_did("email_clicked"),
            steps=[
                _send("ask", "reengage-1"),
                _wait("wait-14d", days=14),
                _step("sunset", "update_contact", add_tags=["sunset"]),
            ],
        ),
    },
    "renewal": {
        "name": "Renewal approaching (60/30/7 days)",
        "templates": [
            _email(
                f"renewal-{days}",
                f"Your renewal is in {days} days",
                "Review your plan before it renews.",
                "Review my plan",
                f"{SITE}/billing",
                marketing=False,
            )
            for days in (60, 30, 7)
        ],
        "sequence": _sequence(
            "renewal",
            "Renewal approaching",
            topic=None,
            triggers=[
                {
                    "type": "lifecycle_stage",
                    "activity_kind": "",
                    "lifecycle_stage": "active_customer",
                    "conditions": {},
                }
            ],
            max_days=400,
            reenrollment="always",
            gap=300,
            steps=[
                step
                for days in (60, 30, 7)
                for step in (
                    _step(
                        f"until-{days}",
                        "wait_until_date",
                        property="renewal_date",
                        offset_days=-days,
                        time="09:00",
                    ),
                    _send(f"renewal-{days}", f"renewal-{days}"),
                )
            ],
        ),
    },
    "demo-request": {
        "name": "Demo request → owner task",
        "templates": [],
        "sequence": _sequence(
            "demo-request",
            "Demo request routing",
            topic=None,
            triggers=[_on("demo_requested")],
            steps=[
                _step(
                    "route",
                    "branch_if",
                    condition=_all(
                        {"field": "company_size", "operator": "in", "value": ["201-1000", "1001+"]}
                    ),
                    yes_step="enterprise",
                    no_step="standard",
                ),
                _step(
                    "enterprise",
                    "create_task",
                    title="Enterprise demo request: reply today",
                    assignee="sequence_owner",
                    due_in_days=0,
                ),
                _step("done", "end"),
                _step(
                    "standard",
                    "create_task",
                    title="Demo request: book a call",
                    assignee="contact_owner",
                    due_in_days=1,
                ),
            ],
        ),
    },
    "nurture": {
        "name": "Nurture for engaged leads",
        "templates": [
            _email(
                "nurture-1",
                "How teams like yours get started",
                "A short story from a customer in your industry.",
                "Read the story",
                f"{SITE}/stories",
            ),
            _email(
                "nurture-2",
                "Ready when you are",
                "See the product on a 20-minute call.",
                "Book a demo",
                f"{SITE}/demo",
            ),
        ],
        "sequence": _sequence(
            "nurture",
            "Nurture for engaged leads",
            topic="newsletter",
            triggers=[
                {
                    "type": "lifecycle_stage",
                    "activity_kind": "",
                    "lifecycle_stage": "engaged_lead",
                    "conditions": {},
                }
            ],
            audience=_all(
                {
                    "field": "lifecycle_stage",
                    "operator": "in",
                    "value": ["engaged_lead", "new_lead"],
                }
            ),
            goals=_did("demo_requested"),
            exits=HANDED_OFF,
            steps=[
                _send("story", "nurture-1"),
                _wait("wait-5d", days=5),
                _send("demo", "nurture-2"),
            ],
        ),
    },
}


def playbook_document(key: str, owner=None) -> dict:
    """The playbook as a configuration document (templates and one sequence)."""
    playbook = PLAYBOOKS[key]
    sequence = {**playbook["sequence"], "owner": owner.get_username() if owner else None}
    return {"version": 1, "email_templates": playbook["templates"], "sequences": [sequence]}


def playbook_install(*, key: str, owner=None) -> Sequence:
    """Install (or refresh) one playbook's templates and draft sequence."""
    import yaml

    if key not in PLAYBOOKS:
        raise ValidationError(f"There is no playbook {key!r}.")
    try:
        config_import(yaml.safe_dump(playbook_document(key, owner), sort_keys=False))
    except ConfigInvalid as exc:
        raise ValidationError([str(error) for error in exc.errors]) from exc
    return Sequence.objects.get(key=PLAYBOOKS[key]["sequence"]["key"])
