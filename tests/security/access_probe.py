"""Ask the running site what each role may do, over HTTP, for the role-matrix test.

Every probe is a real request through the admin (or the API) with a user of the role
logged in; nothing is read from the ModelAdmin classes. A primary key that does not
exist is enough for change and delete: the admin checks permissions before it looks
the object up (403 without, a redirect with).
"""

import re

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from config.access import ANONYMOUS, ROLES, SUPERUSER
from tests.factories import UserFactory

MISSING_PK = "987654321"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def role_users() -> dict:
    """A logged-in client per role (None for anonymous), and the user behind it."""
    users = {ANONYMOUS: None}
    for role in ROLES:
        if role == ANONYMOUS:
            continue
        if role == SUPERUSER:
            users[role] = UserFactory(username="matrix-root", is_superuser=True)
        else:
            users[role] = UserFactory(username=f"matrix-{role[:5].lower()}", groups=[role])
    return users


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _allowed(response) -> bool:
    if response.status_code == 403:
        return False
    location = response.get("Location", "")
    return not (response.status_code == 302 and "/login/" in location)


def admin_model_access(client: Client, model) -> str:
    """The letters v, a, c, d the role gets for this model's admin pages."""
    opts = model._meta
    name = f"admin:{opts.app_label}_{opts.model_name}"
    letters = ""
    listing = client.get(reverse(f"{name}_changelist"), secure=True)
    if listing.status_code == 200:
        letters += "v"
    if _allowed(client.get(reverse(f"{name}_add"), secure=True)):
        letters += "a"
    if _allowed(client.post(reverse(f"{name}_change", args=[MISSING_PK]), {}, secure=True)):
        letters += "c"
    if _allowed(client.get(reverse(f"{name}_delete", args=[MISSING_PK]), secure=True)):
        letters += "d"
    return letters


def admin_actions(user, model) -> set[str]:
    """The changelist actions this role is offered (Django refuses any other on POST)."""
    if user is None:
        return set()
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = user
    if not model_admin.has_view_or_change_permission(request):
        return set()
    return set(model_admin.get_actions(request))


def registered_models():
    return sorted(admin.site._registry, key=lambda model: model._meta.label_lower)


def api_routes() -> list[str]:
    """Every URL under /api/v1/, with sample values for its arguments."""
    routes = []

    def walk(resolver, prefix: str) -> None:
        for pattern in resolver.url_patterns:
            text = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                walk(pattern, text)
            elif pattern.name == "api-not-found":
                continue  # the JSON 404 for every other path: not a route of its own
            elif isinstance(pattern, URLPattern) and text.startswith("api/v1/"):
                routes.append("/" + _sample(text))

    walk(get_resolver(), "")
    return sorted(set(routes))


def _sample(path: str) -> str:
    path = re.sub(r"<int:\w+>|\(\?P<\w+>[^)]*\)", "1", path)
    path = re.sub(r"<(slug|str|path):\w+>|<\w+>", "sample", path)
    return path.replace("\\.", ".")


#: Admin views that only accept POST: probed with an empty POST.
POST_ONLY_VIEWS = frozenset({"crm_contact_process_import", "crm_segment_preview"})


def admin_view_urls() -> dict[str, str]:
    """Each admin view added with get_urls(), as a URL with real objects where it needs one."""
    from tests.factories import EmailTemplateFactory, HandoffFactory, SegmentFactory
    from tests.sequences.conftest import build_sequence, email_step

    sequence = build_sequence([email_step("hello")], key="probe", activate=False)
    return {
        "crm_contact_import": reverse("admin:crm_contact_import"),
        "crm_contact_process_import": reverse("admin:crm_contact_process_import"),
        "crm_contact_export": reverse("admin:crm_contact_export"),
        "crm_segment_preview": reverse("admin:crm_segment_preview"),
        "crm_segment_export": reverse("admin:crm_segment_export", args=[SegmentFactory().pk]),
        "crm_segment_status": reverse("admin:crm_segment_status", args=[SegmentFactory().pk]),
        "predictions_predictionrun_insights": reverse("admin:predictions_predictionrun_insights"),
        "predictions_predictionrun_calibration": reverse(
            "admin:predictions_predictionrun_calibration"
        ),
        "scoring_handoff_report": reverse("admin:scoring_handoff_report"),
        "scoring_handoff_act": reverse(
            "admin:scoring_handoff_act", args=[HandoffFactory().pk, "claim"]
        ),
        "scoring_handoff_reassign": reverse(
            "admin:scoring_handoff_reassign", args=[HandoffFactory().pk]
        ),
        "sequences_deliverability": reverse("admin:sequences_deliverability"),
        "reports_dashboard": reverse("admin:reports_dashboard"),
        "sequences_emailtemplate_preview": reverse(
            "admin:sequences_emailtemplate_preview", args=[EmailTemplateFactory().pk]
        ),
        "sequences_sequence_install_playbook": reverse("admin:sequences_sequence_install_playbook"),
        "sequences_sequence_import_yaml": reverse("admin:sequences_sequence_import_yaml"),
        **{
            f"sequences_sequence_{verb}": reverse(
                f"admin:sequences_sequence_{verb}", args=[sequence.pk]
            )
            for verb in ("activate", "pause", "resume", "builder")
        },
    }


def admin_view_allowed(client: Client, name: str, url: str) -> bool:
    if name in POST_ONLY_VIEWS:
        return _allowed(client.post(url, {}, secure=True))
    return _allowed(client.get(url, secure=True))


def admin_view_names() -> set[str]:
    """The names of every admin URL beyond the standard list/add/change/delete/history."""
    standard = ("_changelist", "_add", "_change", "_delete", "_history", "_autocomplete")
    return {
        pattern.name
        for model_admin in admin.site._registry.values()
        for pattern in model_admin.get_urls()
        if pattern.name and not pattern.name.endswith(standard)
    } | site_view_names()


def site_view_names() -> set[str]:
    """Views our admin site adds itself (crm/admin_site.py), beyond Django's own."""
    django_views = {getattr(pattern, "name", None) for pattern in AdminSite.get_urls(admin.site)}
    return {
        pattern.name
        for pattern in admin.site.get_urls()
        if getattr(pattern, "name", None) and pattern.name not in django_views
    }


def api_answer(client: Client, method: str, route: str) -> int:
    return getattr(client, method.lower())(route, secure=True).status_code
