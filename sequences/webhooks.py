"""The ESP's webhook: which ESP's URL is mounted, and what happens to its events.

The anymail tracking receiver stores the event in the inbox and returns (STYLE.md §8).
Errors in it are not caught: anymail lets them propagate, Django answers 500, and the
ESP retries. A 4xx would make some ESPs drop the event for good (reliability.md §4.3).

A body the ESP itself got wrong (authenticated, but not JSON or not the ESP's shape)
is different: retrying cannot fix it, so it is logged and answered 400, never 500.
Only the configured ESP's tracking URL is mounted (ESP_WEBHOOKS, docs/deliverability.md):
an ESP that is not configured has no secret or key to check its webhooks with, and
anymail would answer its URL with a 500 on every call.
"""

import logging

from anymail import urls as anymail_urls
from anymail.webhooks.base import AnymailCoreWebhookView
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.urls import URLPattern, path
from django.views.generic import View

from sequences.esp.inbox import esp_event_store, inbox_batch
from sequences.esp.sns import TopicCheckedSesTrackingView

logger = logging.getLogger(__name__)

#: Views that replace anymail's own for an ESP (each documents why).
OWN_VIEWS = {"amazon_ses": TopicCheckedSesTrackingView}


class MalformedWebhook(SuspiciousOperation):
    """An authenticated webhook body that cannot be parsed: Django answers 400."""


def store_tracking_event(sender, event, esp_name, **kwargs) -> None:
    esp_event_store(event, esp_name)


def tracking_view_classes() -> dict[str, type]:
    """Every ESP anymail can take tracking webhooks from: {esp: view class}."""
    views = {}
    for pattern in anymail_urls.urlpatterns:
        name = pattern.name or ""
        if name.endswith("_tracking_webhook"):
            views[name.removesuffix("_tracking_webhook")] = pattern.callback.view_class
    return {**views, **OWN_VIEWS}


def esp_tracking_urls(esps: list[str]) -> list[URLPattern]:
    """URL patterns (under /anymail/) for these ESPs' tracking webhooks only."""
    known = tracking_view_classes()
    unknown = sorted(set(esps) - set(known))
    if unknown:
        raise ImproperlyConfigured(
            f"ESP_WEBHOOKS names {', '.join(unknown)}; anymail takes tracking webhooks "
            f"from: {', '.join(sorted(known))}."
        )
    return [
        path(
            f"{esp}/tracking/",
            guarded(known[esp]).as_view(),
            name=f"{esp}_tracking_webhook",
        )
        for esp in esps
    ]


def guarded(view_class: type) -> type:
    """The ESP's view, answering 400 (and logging) for a body that cannot be parsed.

    Its events are written to the inbox together, in one INSERT before the answer
    (inbox_batch), however many the ESP batched in the POST.
    """

    def post(self, request, *args, **kwargs):
        with inbox_batch():
            return super(guarded_class, self).post(request, *args, **kwargs)

    def parse_events(self, request):
        try:
            # list(): some ESPs parse lazily, and their errors would surface mid-dispatch.
            return list(super(guarded_class, self).parse_events(request))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # Ids and types only: the body may hold addresses (STYLE.md §10).
            logger.warning(
                "Refused a malformed %s webhook (%s); the ESP sent a body it cannot have meant.",
                self.esp_name,
                type(exc).__name__,
            )
            raise MalformedWebhook(f"Malformed {self.esp_name} webhook body.") from exc

    guarded_class = type(f"Guarded{view_class.__name__}", (view_class,), {})
    guarded_class.parse_events = parse_events
    guarded_class.post = post
    if view_class.dispatch is AnymailCoreWebhookView.dispatch:
        guarded_class.dispatch = _marked_dispatch
    return guarded_class


def _marked_dispatch(self, request, *args, **kwargs):
    # anymail's dispatch is View.dispatch under method_decorator(csrf_exempt) and
    # method_decorator(login_not_required), which rebuild both wrappers on every call (a
    # twentieth of a one-event POST) for what is only a mark on the view: set once, here.
    return View.dispatch(self, request, *args, **kwargs)


_marked_dispatch.csrf_exempt = True
_marked_dispatch.login_required = False
