"""Public pages, no login: unsubscribe (RFC 8058), preference centre, sign-up with opt-in.

Every token is checked the same way and every failure is the same bare 404, so a
visitor cannot tell a forged token from an expired one or an erased person.
GET never changes anything: link scanners and mailbox providers fetch every link.
"""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.client_ip import client_ip
from crm.links import (
    opt_in_token_read,
    preferences_token_read,
    preferences_url,
    unsubscribe_token_read,
)
from crm.models import ConsentEntry, ConsentText, ConsentTopic, Contact
from crm.public.forms import PreferencesForm, SignUpForm, inferred_time_zone
from crm.public.ratelimit import rate_limited
from crm.services import (
    Visitor,
    opt_in_confirm,
    opt_in_request_send,
    preferences_save,
    unsubscribe_all,
    unsubscribe_one_click,
)
from crm.services.preferences import PREFERENCE_CENTRE_SOURCE, preference_choices


@csrf_exempt  # RFC 8058: mailbox providers POST with no cookie, session or CSRF token.
@require_http_methods(["GET", "POST"])
@rate_limited("unsubscribe")
def unsubscribe(request, token: str):
    """GET: a page with a confirm button. POST (one-click or the button): unsubscribe, 200."""
    target = unsubscribe_token_read(token)
    contact = _contact_or_404(target.contact_id if target else None)
    topic = ConsentTopic.objects.filter(key=target.topic_key).first()
    context = {"topic": topic, "preferences_url": preferences_url(contact)}
    if request.method == "POST":
        unsubscribe_one_click(
            contact=contact, topic_key=target.topic_key, visitor=_visitor(request)
        )
        return render(request, "public/unsubscribed.html", context)
    return render(request, "public/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
@rate_limited("preferences")
def preferences(request, token: str):
    """The preference centre: topics on or off, a 30-day pause, unsubscribe from all."""
    contact = _contact_or_404(preferences_token_read(token))
    topics = [choice.topic for choice in preference_choices(contact=contact)]
    saved = False
    form = PreferencesForm(request.POST or None, topics=topics)
    if request.method == "POST" and form.is_valid():
        _apply_preferences(contact, form.cleaned_data, _visitor(request))
        saved = True
    if request.method == "GET" or saved:
        form = PreferencesForm(initial={"topics": _granted_keys(contact)}, topics=topics)
    return render(request, "public/preferences.html", {"form": form, "saved": saved})


@csrf_exempt  # The form is embedded on other sites, which cannot carry our CSRF token;
# a forged post only mails a confirmation request, and consent needs the confirmation.
@require_http_methods(["GET", "POST"])
@rate_limited("subscribe", methods=frozenset({"POST"}))
def subscribe(request):
    """The hosted sign-up page (GET) and the endpoint the embedded form posts to."""
    form = SignUpForm(request.POST or None, initial={"topic": _sign_up_topic_key(request)})
    if request.method == "POST" and form.is_valid():
        if not form.cleaned_data["website"]:
            opt_in_request_send(
                email=form.cleaned_data["email"],
                topic=form.cleaned_data["topic"],
                first_name=form.cleaned_data["first_name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        # The same answer whether the address is new, known, suppressed or a bot's.
        return render(request, "public/subscribe_sent.html")
    topic = ConsentTopic.objects.filter(key=form["topic"].value(), is_active=True).first()
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "topic": topic, "consent_text": _wording(topic)}
    return render(request, "public/subscribe.html", context, status=status)


@require_http_methods(["GET", "POST"])
@rate_limited("subscribe_confirm")
def subscribe_confirm(request, token: str):
    """GET: the wording and a confirm button. POST: record consent with IP and user agent."""
    pending = opt_in_token_read(token)
    if pending is None:
        raise Http404
    topic = ConsentTopic.objects.filter(key=pending.topic_key, is_active=True).first()
    text = ConsentText.objects.filter(pk=pending.consent_text_id).first()
    if topic is None:
        raise Http404
    if request.method == "POST":
        entry = opt_in_confirm(
            request=pending,
            visitor=_visitor(request),
            time_zone=inferred_time_zone(request.POST.get("time_zone")),
        )
        if entry is None:
            raise Http404
        return render(request, "public/subscribe_confirmed.html", {"topic": topic})
    return render(request, "public/subscribe_confirm.html", {"topic": topic, "consent_text": text})


def _apply_preferences(contact: Contact, data: dict, visitor: Visitor) -> None:
    if data["unsubscribe_all"]:
        unsubscribe_all(
            contact=contact,
            method=ConsentEntry.Method.PREFERENCE_CENTRE,
            source=PREFERENCE_CENTRE_SOURCE,
            visitor=visitor,
        )
        return
    preferences_save(
        contact=contact, wanted_keys=set(data["topics"]), pause=data["pause"], visitor=visitor
    )


def _granted_keys(contact: Contact) -> list[str]:
    return [choice.topic.key for choice in preference_choices(contact=contact) if choice.is_granted]


def _contact_or_404(contact_id: int | None) -> Contact:
    contact = Contact.objects.filter(pk=contact_id).first() if contact_id else None
    if contact is None:
        raise Http404
    return contact


def _visitor(request) -> Visitor:
    return Visitor(
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def _sign_up_topic_key(request) -> str:
    default = settings.SIGN_UP_DEFAULT_TOPIC
    return request.GET.get("topic", default)


def _wording(topic: ConsentTopic | None) -> ConsentText | None:
    if topic is None:
        return None
    return ConsentText.objects.filter(topic=topic).order_by("-version").first()
