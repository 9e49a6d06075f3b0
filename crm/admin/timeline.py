"""The contact timeline in words: "Viewed /pricing", not `path: /pricing · kind: page_viewed`.

crm phrases its own vocabulary (Activity.Kind); other apps register describers for
their kinds through crm.admin_hooks. Anything else reads as its kind in words plus its
first few properties, ids left out. Lookups (users, notes, stage and topic names) are
done once per page, so the timeline stays a fixed number of queries.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from crm import admin_hooks
from crm.models import Activity, ConsentTopic, DealStage, LifecycleStage, Note

Kind = Activity.Kind
NOTE_PREVIEW_LENGTH = 140
VALUE_LENGTH = 80
FALLBACK_PROPERTY_COUNT = 3

#: Kinds said in a few words when their properties add nothing a reader needs.
PLAIN = {
    Kind.DEMO_REQUESTED: "Requested a demo",
    Kind.SIGNED_UP: "Signed up",
    Kind.CART_UPDATED: "Updated their cart",
    Kind.CART_ABANDONED: "Left their cart",
    Kind.CHECKOUT_STARTED: "Started checkout",
    Kind.EMAIL_DELIVERED: "An email was delivered",
    Kind.EMAIL_OPENED: "Opened an email",
    Kind.EMAIL_BOUNCED: "An email bounced",
    Kind.EMAIL_COMPLAINED: "Marked an email as spam",
    Kind.UNSUBSCRIBED: "Unsubscribed from all marketing email",
}


@dataclass(frozen=True)
class Names:
    """What the page's activities refer to by id or key, looked up once."""

    users: dict[int, str]
    notes: dict[int, str]
    stages: dict[str, str]
    deal_stages: dict[str, str]
    topics: dict[str, str]


def timeline_names(activities: Sequence[Activity]) -> Names:
    """Look up the users and notes the activities mention (two queries) and the small tables."""
    user_ids, note_ids = set(), set()
    for activity in activities:
        properties = activity.properties or {}
        user_ids.update(
            value
            for key in admin_hooks.ACTIVITY_USER_KEYS
            if isinstance(value := properties.get(key), int)
        )
        if activity.kind == Kind.NOTE_ADDED and isinstance(properties.get("note_id"), int):
            note_ids.add(properties["note_id"])
    users = {}
    if user_ids:
        users = {
            user.pk: (user.get_full_name() or user.get_username())
            for user in get_user_model().objects.filter(pk__in=user_ids)
        }
    notes = dict(Note.objects.filter(pk__in=note_ids).values_list("pk", "body")) if note_ids else {}
    kinds = {activity.kind for activity in activities}
    stages = deal_stages = topics = {}
    if Kind.LIFECYCLE_STAGE_CHANGED in kinds:
        stages = dict(LifecycleStage.objects.values_list("key", "name"))
    if Kind.DEAL_STAGE_CHANGED in kinds:
        deal_stages = dict(DealStage.objects.values_list("key", "name"))
    if kinds & {Kind.CONSENT_GRANTED, Kind.CONSENT_WITHDRAWN}:
        topics = dict(ConsentTopic.objects.values_list("key", "name"))
    return Names(users=users, notes=notes, stages=stages, deal_stages=deal_stages, topics=topics)


def activity_sentence(activity: Activity, names: Names) -> str:
    """One plain sentence saying what happened."""
    properties = activity.properties or {}
    describe = admin_hooks.activity_describer(activity.kind)
    if describe is not None:
        return describe(activity, names.users)
    if activity.kind in PLAIN:
        return PLAIN[activity.kind]
    phrase = CRM_PHRASES.get(activity.kind)
    if phrase is not None:
        return phrase(properties, names)
    return _fallback(activity.kind, properties)


def kind_in_words(kind: str) -> str:
    """page_viewed → "Page viewed"."""
    return kind.replace("_", " ").replace("-", " ").strip().capitalize() or "Activity"


def _short(value: object, length: int = VALUE_LENGTH) -> str:
    text = str(value)
    return text if len(text) <= length else text[: length - 1] + "…"


def _first(properties: dict, *keys: str) -> str:
    for key in keys:
        if properties.get(key) not in (None, ""):
            return _short(properties[key])
    return ""


def _with(text: str, detail: str, joiner: str = " ") -> str:
    return f"{text}{joiner}{detail}" if detail else text


def _page_viewed(properties: dict, names: Names) -> str:
    return _with("Viewed", _first(properties, "path", "url", "title") or "a page")


def _form_submitted(properties: dict, names: Names) -> str:
    form = _first(properties, "form", "form_name", "name", "form_id")
    return _with("Submitted the form", f"“{form}”") if form else "Submitted a form"


def _content_downloaded(properties: dict, names: Names) -> str:
    title = _first(properties, "title", "name", "asset", "file", "path")
    return _with("Downloaded", f"“{title}”") if title else "Downloaded content"


def _product_viewed(properties: dict, names: Names) -> str:
    product = _first(properties, "name", "product", "sku", "product_id")
    return _with("Viewed the product", product) if product else "Viewed a product"


def _order_placed(properties: dict, names: Names) -> str:
    total = _first(properties, "total", "amount", "value")
    currency = _first(properties, "currency")
    return (
        _with("Placed an order", f"of {total} {currency}".strip()) if total else "Placed an order"
    )


def _milestone(properties: dict, names: Names) -> str:
    milestone = _first(properties, "milestone", "name")
    return (
        _with("Reached the onboarding milestone", f"“{milestone}”")
        if milestone
        else ("Reached an onboarding milestone")
    )


def _email_sent(properties: dict, names: Names) -> str:
    template = _first(properties, "template", "subject")
    sequence = _first(properties, "sequence")
    text = _with("Was sent the email", f"“{template}”") if template else "Was sent an email"
    return _with(text, f"(sequence {sequence})") if sequence else text


def _email_clicked(properties: dict, names: Names) -> str:
    url = _first(properties, "url", "link")
    return _with("Clicked", f"{url} in an email") if url else "Clicked a link in an email"


def _consent(granted: bool) -> Callable[[dict, Names], str]:
    def phrase(properties: dict, names: Names) -> str:
        key = properties.get("topic", "")
        topic = names.topics.get(key, key) or "a topic"
        method = _first(properties, "method").replace("_", " ")
        text = f"Gave consent to {topic}" if granted else f"Withdrew consent to {topic}"
        return _with(text, f"({method})") if method else text

    return phrase


def _stage_changed(properties: dict, names: Names) -> str:
    before = names.stages.get(properties.get("from"), properties.get("from") or "")
    after = names.stages.get(properties.get("to"), properties.get("to") or "")
    text = f"Stage changed from {before} to {after}" if before else f"Stage set to {after}"
    return _with(text, f"({_short(properties['by'])})") if properties.get("by") else text


def _deal_stage_changed(properties: dict, names: Names) -> str:
    before = names.deal_stages.get(properties.get("from"), properties.get("from") or "")
    after = names.deal_stages.get(properties.get("to"), properties.get("to") or "")
    text = f"Deal moved from {before} to {after}" if before else f"Deal opened in {after}"
    amount = _first(properties, "amount")
    return (
        _with(text, f"({amount} {_first(properties, 'currency')})".replace(" )", ")"))
        if (amount)
        else text
    )


def _note_added(properties: dict, names: Names) -> str:
    author = names.users.get(properties.get("author_id"), "Someone")
    body = names.notes.get(properties.get("note_id"))
    if body is None:
        return f"{author} added a note"
    return f"{author} added a note: “{_short(' '.join(body.split()), NOTE_PREVIEW_LENGTH)}”"


def _handed_off(properties: dict, names: Names) -> str:
    owner = names.users.get(properties.get("owner_id"))
    score = properties.get("score")
    text = "Handed to sales" + (f" at score {score}" if score is not None else "")
    return _with(text, f"(to {owner})") if owner else text


CRM_PHRASES: dict[str, Callable[[dict, Names], str]] = {
    Kind.PAGE_VIEWED: _page_viewed,
    Kind.FORM_SUBMITTED: _form_submitted,
    Kind.CONTENT_DOWNLOADED: _content_downloaded,
    Kind.PRODUCT_VIEWED: _product_viewed,
    Kind.ORDER_PLACED: _order_placed,
    Kind.ONBOARDING_MILESTONE_REACHED: _milestone,
    Kind.EMAIL_SENT: _email_sent,
    Kind.EMAIL_CLICKED: _email_clicked,
    Kind.CONSENT_GRANTED: _consent(True),
    Kind.CONSENT_WITHDRAWN: _consent(False),
    Kind.LIFECYCLE_STAGE_CHANGED: _stage_changed,
    Kind.DEAL_STAGE_CHANGED: _deal_stage_changed,
    Kind.NOTE_ADDED: _note_added,
    Kind.HANDED_OFF: _handed_off,
}


def _fallback(kind: str, properties: dict) -> str:
    """A custom kind: its name in words and a few properties, ids left out."""
    shown = [
        f"{kind_in_words(key).lower()} {_short(value)}"
        for key, value in properties.items()
        if not (key == "id" or key.endswith(("_id", "_uuid", "uuid")))
        and value not in (None, "", [], {})
        and not isinstance(value, dict | list)
    ][:FALLBACK_PROPERTY_COUNT]
    return _with(kind_in_words(kind), f"({', '.join(shown)})" if shown else "")
