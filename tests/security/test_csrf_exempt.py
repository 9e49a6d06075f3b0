"""CSRF: the views that skip Django's CSRF check are a short, reviewed allowlist.

Walks the whole URL resolver, so a new csrf_exempt view fails this test until it is
added here with its reason (and, for API and webhook views, until it is shown to use
no session or cookie authentication, which is what CSRF protects).
"""

from anymail.webhooks.base import AnymailBasicAuthMixin
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

#: Our own HTML views that accept cross-site POSTs, by URL name, with the reason.
ALLOWLIST = {
    "unsubscribe": "RFC 8058 one-click: mailbox providers POST with no cookie or token",
    "subscribe": "the sign-up form is embedded on other sites; it only mails a confirmation",
}


def views():
    """(route, name, view function) for every URL of the site."""

    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern.name, pattern.callback

    return list(walk(get_resolver(), ""))


def is_exempt(callback) -> bool:
    return getattr(callback, "csrf_exempt", False)


def view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def test_the_csrf_exempt_views_are_the_allowlist_the_api_and_the_esp_webhooks():
    exempt = [(route, name, callback) for route, name, callback in views() if is_exempt(callback)]
    unexplained = []

    for route, name, callback in exempt:
        cls = view_class(callback)
        if name in ALLOWLIST:
            continue
        if route.startswith("api/v1/") and cls is not None and issubclass(cls, APIView):
            continue  # checked below: no session authentication
        if (
            route.startswith("anymail/")
            and cls is not None
            and issubclass(cls, AnymailBasicAuthMixin)
        ):
            continue  # ESP webhooks: basic auth (ANYMAIL_WEBHOOK_SECRET) plus signatures
        unexplained.append(route)

    assert unexplained == []
    assert {name for _route, name, callback in exempt if name in ALLOWLIST} == set(ALLOWLIST)


def test_api_views_authenticate_without_sessions_so_csrf_has_nothing_to_protect():
    session_views = [
        route
        for route, _name, callback in views()
        if (cls := view_class(callback)) is not None
        and issubclass(cls, APIView)
        and any(
            issubclass(auth, SessionAuthentication)
            for auth in (
                getattr(callback, "initkwargs", {}).get("authentication_classes")
                or cls.authentication_classes
            )
        )
    ]

    assert session_views == []


def test_admin_and_preference_views_are_not_exempt():
    protected = [
        route
        for route, name, callback in views()
        if (route.startswith("admin/") or name in {"preferences", "subscribe-confirm"})
        and is_exempt(callback)
    ]

    assert protected == []
