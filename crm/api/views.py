"""The API's endpoints: parse the request, call one service, present the result."""

import functools
import hashlib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.http import condition, require_GET
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.cors import BrowserCorsMixin
from crm.api.errors import PayloadTooLarge, flatten_errors
from crm.api.filters import CompanyFilter, ContactFilter, DealFilter
from crm.api.pagination import ApiCursorPagination
from crm.api.permissions import (
    BrowserKeyOriginAllowed,
    HasApiKey,
    IsServerKey,
    browser_forbidden,
    browser_refusals,
    refuse_browser_fields,
)
from crm.api.serializers import (
    MAX_EVENTS_PER_REQUEST,
    ApiErrorSerializer,
    CommonEventShape,
    CompanySerializer,
    CompanyUpsertSerializer,
    ContactConsentStateSerializer,
    ContactCreateSerializer,
    ContactDetailSerializer,
    ContactSerializer,
    ContactUnsubscribeSerializer,
    ContactUpdateSerializer,
    DealCreateSerializer,
    DealMoveSerializer,
    DealSerializer,
    EventBatchSerializer,
    EventSerializer,
    EventsRejectedSerializer,
    EventsResponseSerializer,
    IdentifyAcceptedSerializer,
    IdentifyResponseSerializer,
    IdentifySerializer,
    first_touch,
    incoming_event,
)
from crm.models import ApiKey, Company, ConsentEntry, Contact, Deal
from crm.selectors import consent_by_topic, suppressions_active_for
from crm.services import (
    Visitor,
    company_upsert,
    consent_withdraw,
    contact_update,
    contact_upsert,
    contacts_vouch,
    deal_create,
    deal_move_stage,
    lifecycle_stage_change,
    unsubscribe_all,
)
from crm.services.events import EventOutcome, EventStatus, events_ingest
from crm.services.identity import contact_identify, visitor_identify

SNIPPET_PATH = Path(__file__).resolve().parent.parent / "static" / "crm" / "nextstep.js"
#: Sites embed the snippet on every page: let browsers and CDNs keep it for an hour.
SNIPPET_MAX_AGE_SECONDS = 3600


def validated(serializer_class: type[serializers.Serializer], request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Events and identify (server and browser keys) ------------------------------------------


class EventsView(BrowserCorsMixin, APIView):
    permission_classes = [HasApiKey, BrowserKeyOriginAllowed]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="events_record",
        summary="Record events",
        description=(
            'Send one event, or `{"events": [...]}` with 1 to 1,000. Each event is '
            "validated on its own: valid ones are recorded, invalid ones come back in "
            "`results` with their index and reasons. 200: every event was recorded or was "
            "a duplicate; 207: some were invalid; 400: none could be recorded. Unknown "
            "emails create contacts (never with consent)."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventOrBatch",
            serializers=[EventSerializer, EventBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={
            200: EventsResponseSerializer,
            207: EventsResponseSerializer,
            400: EventsRejectedSerializer,
        },
        examples=[
            OpenApiExample(
                "One event",
                request_only=True,
                value={
                    "type": "page_viewed",
                    "email": "ada@example.com",
                    "properties": {"path": "/pricing"},
                    "idempotency_key": "view-2025-01-31-0001",
                },
            ),
            OpenApiExample(
                "Mixed batch",
                response_only=True,
                status_codes=["207"],
                value={
                    "recorded": 1,
                    "duplicates": 0,
                    "invalid": 1,
                    "results": [
                        {"index": 0, "status": "recorded", "activity_id": 42, "contact_id": 7},
                        {
                            "index": 1,
                            "status": "invalid",
                            "errors": {"occurred_at": ["This is more than a day in the future."]},
                        },
                    ],
                },
            ),
        ],
    )
    def post(self, request):
        api_key: ApiKey = request.auth
        refuse_large_body(request)
        items, is_batch = event_items(request.data)
        # A batch keeps its good events: each refused one is answered `forbidden`.
        refused = browser_refusals(api_key, items)
        if refused and (not is_batch or len(refused) == len(items)):
            raise browser_forbidden(refused, is_batch=is_batch)
        valid, invalid = validate_each(items, skip=refused.keys())
        outcomes = []
        if valid:
            outcomes = events_ingest(
                events=[event for _, event in valid],
                source=api_key.source_label,
                vouched_by=vouched_by(api_key),
            )
        results = event_results(len(items), valid, invalid, refused, outcomes)
        return events_response(results)


def vouched_by(api_key: ApiKey) -> str:
    """Server keys vouch for the addresses they name; browser keys are public (anyone's)."""
    return Contact.VouchedBy.SERVER_KEY if api_key.kind == ApiKey.Kind.SERVER else ""


def refuse_large_body(request) -> None:
    # Checked before the body is read; bodies of other endpoints are refused the same
    # way as they are read (RequestDataTooBig, crm.api.errors).
    header = request.META.get("CONTENT_LENGTH") or "0"
    length = int(header) if header.isdigit() else 0
    if length > settings.API_MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request body is {length:,} bytes; the limit is {settings.API_MAX_BODY_BYTES:,}."
        )


def event_items(data) -> tuple[list, bool]:
    """Return the events of the request and whether it was a batch."""
    if not isinstance(data, dict):
        raise serializers.ValidationError(
            {"non_field_errors": ['Send one event as a JSON object, or {"events": [...]}.']}
        )
    if "events" not in data:
        return [data], False
    events = data["events"]
    extra = sorted(set(data) - {"events"})
    if extra:
        raise serializers.ValidationError(
            {name: ["A batch has only `events`; put this inside each event."] for name in extra}
        )
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_REQUEST:
        count = f"; this request has {len(events):,}" if isinstance(events, list) else ""
        raise serializers.ValidationError(
            {"events": [f"Send a list of 1 to {MAX_EVENTS_PER_REQUEST:,} events{count}."]}
        )
    return events, True


def validate_each(items: list, skip=()) -> tuple[list, dict[int, dict]]:
    """Validate every event on its own: ([(index, IncomingEvent)], {index: errors})."""
    valid, invalid = [], {}
    # The common shape is checked without DRF's machinery (CommonEventShape); any other
    # event goes through one serializer for the whole batch, the way DRF's ListSerializer
    # runs its child (a serializer per event deep-copied every declared field 1,000 times).
    # Validation keeps no state per call.
    common = CommonEventShape()
    serializer = EventSerializer()
    for index, item in enumerate(items):
        if index in skip:
            continue
        data = common(item)
        if data is None:
            try:
                data = serializer.run_validation(item)
            except serializers.ValidationError as error:
                invalid[index] = flatten_errors(error.detail)
                continue
        valid.append((index, incoming_event(data)))
    return valid, invalid


def event_results(
    count: int,
    valid: list,
    invalid: dict[int, dict],
    refused: dict[int, dict],
    outcomes: list[EventOutcome],
) -> list[dict]:
    results: list[dict] = [{} for _ in range(count)]
    for index, errors in invalid.items():
        results[index] = {"index": index, "status": EventStatus.INVALID, "errors": errors}
    for index, errors in refused.items():
        results[index] = {"index": index, "status": EventStatus.FORBIDDEN, "errors": errors}
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        results[index] = outcome_result(index, outcome)
    return results


def outcome_result(index: int, outcome: EventOutcome) -> dict:
    result = {"index": index, "status": outcome.status}
    if outcome.status == EventStatus.RECORDED:
        result["activity_id"] = outcome.activity.pk
        result["contact_id"] = outcome.contact_id
    elif outcome.status == EventStatus.INVALID:
        result["errors"] = outcome.errors
    return result


def events_response(results: list[dict]) -> Response:
    counts = dict.fromkeys(EventStatus, 0)
    for result in results:
        counts[result["status"]] += 1
    body = {
        "recorded": counts[EventStatus.RECORDED],
        "duplicates": counts[EventStatus.DUPLICATE],
        "accepted": counts[EventStatus.ACCEPTED],
        "invalid": counts[EventStatus.INVALID],
        "forbidden": counts[EventStatus.FORBIDDEN],
        "results": results,
    }
    failed = counts[EventStatus.INVALID] + counts[EventStatus.FORBIDDEN]
    if failed == len(results):
        message = "No event was recorded: every event is invalid; `results` says why."
        body = {"error": "invalid", "message": message, **body}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if failed:
        return Response(body, status=status.HTTP_207_MULTI_STATUS)
    return Response(body)


class IdentifyView(BrowserCorsMixin, APIView):
    permission_classes = [HasApiKey, BrowserKeyOriginAllowed]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="identify",
        summary="Identify a visitor",
        description=(
            "Tie an anonymous visitor to a person (by email or external_id; created if "
            "new). Their earlier anonymous events become the contact's, and later events "
            "with the same anonymous_id are attributed to them. Traits update the profile. "
            "An anonymous id or IP address alone never creates a contact. Server keys: "
            "201 when the contact was created, 200 otherwise. Browser keys (public) get "
            "202 whatever exists: the visitor is tied to a contact only if one is known, "
            "nothing is created and traits are not stored."
        ),
        request=IdentifySerializer,
        responses={
            200: IdentifyResponseSerializer,
            201: IdentifyResponseSerializer,
            202: IdentifyAcceptedSerializer,
        },
    )
    def post(self, request):
        api_key: ApiKey = request.auth
        refuse_browser_fields(api_key, [request.data], is_batch=False)
        data = validated(IdentifySerializer, request)
        if api_key.kind != ApiKey.Kind.SERVER:
            visitor_identify(
                email=data.get("email", ""),
                external_id=data.get("external_id", ""),
                anonymous_id=data.get("anonymous_id", ""),
                source=api_key.source_label,
            )
            return Response({"status": "accepted"}, status=status.HTTP_202_ACCEPTED)
        traits = dict(data.get("traits") or {})
        result = contact_identify(
            email=data.get("email", ""),
            external_id=data.get("external_id", ""),
            anonymous_id=data.get("anonymous_id", ""),
            properties=traits.pop("properties", {}),
            traits=traits,
            first_touch=first_touch(data.get("context") or {}),
            source=api_key.source_label,
            vouched_by=vouched_by(api_key),
        )
        body = {
            "contact_id": result.contact.pk,
            "created": result.created,
            "merged_activity_count": result.merged_activity_count,
            "changed_fields": list(result.changed_fields),
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else 200)


# --- Contacts, companies, deals (server keys) -----------------------------------------------


class ServerKeyViewSet(viewsets.GenericViewSet):
    permission_classes = [IsServerKey]
    parser_classes = [JSONParser]
    filter_backends = [DjangoFilterBackend]
    pagination_class = ApiCursorPagination


class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServerKeyViewSet):
    """People. Creating is an upsert by email; consent is never granted through the API."""

    queryset = Contact.objects.prefetch_related("tags")
    serializer_class = ContactSerializer
    filterset_class = ContactFilter

    def get_queryset(self):
        if self.action == "retrieve":
            return super().get_queryset().select_related("prediction__run")
        return super().get_queryset()

    def get_serializer_class(self):
        return (
            ContactDetailSerializer if self.action == "retrieve" else super().get_serializer_class()
        )

    @extend_schema(
        summary="Create or update a contact by email",
        request=ContactCreateSerializer,
        responses={200: ContactSerializer, 201: ContactSerializer},
    )
    def create(self, request):
        data = dict(validated(ContactCreateSerializer, request))
        if "lifecycle_stage" in data:
            data["lifecycle_stage"] = data["lifecycle_stage"].key
        result = contact_upsert(
            source=Contact.Source.API, vouched_by=Contact.VouchedBy.SERVER_KEY, **data
        )
        return Response(
            ContactSerializer(result.contact).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Change a contact",
        request=ContactUpdateSerializer,
        responses=ContactSerializer,
    )
    def partial_update(self, request, pk=None):
        contact = self.get_object()
        data = dict(validated(ContactUpdateSerializer, request))
        stage = data.pop("lifecycle_stage", None)
        reason = data.pop("lifecycle_stage_reason", "")
        if "properties" in data:
            data["properties"] = {**contact.properties, **data["properties"]}
        with transaction.atomic():  # the profile and the stage change together or not at all
            contacts_vouch(contact_ids=[contact.pk], by=Contact.VouchedBy.SERVER_KEY)
            if data:
                contact_update(contact=contact, **data)
            if stage is not None:
                lifecycle_stage_change(
                    contact=contact,
                    stage=stage.key,
                    source=request.auth.source_label,
                    reason=reason,
                )
        return Response(ContactSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="contacts_unsubscribe",
        summary="Withdraw a contact's consent",
        description=(
            'Withdraw one topic (`{"topic": "newsletter"}`), or every topic plus an '
            '`unsubscribed` suppression (`{"all": true}`, as the preference centre\'s '
            '"unsubscribe from all"). Ledger rows get method `api` and source '
            "`API key <prefix>`. Repeating it changes nothing. Answers with the "
            "contact's consent per topic."
        ),
        request=ContactUnsubscribeSerializer,
        responses={200: ContactConsentStateSerializer, 400: ApiErrorSerializer},
        examples=[
            OpenApiExample("One topic", request_only=True, value={"topic": "newsletter"}),
            OpenApiExample("Everything", request_only=True, value={"all": True}),
        ],
    )
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request, pk=None):
        contact = self.get_object()
        data = validated(ContactUnsubscribeSerializer, request)
        method, source = ConsentEntry.Method.API, f"API key {request.auth.prefix}"
        if data.get("all"):
            # The API caller is the company's server, not the person: no IP or user agent.
            unsubscribe_all(contact=contact, method=method, source=source, visitor=Visitor())
        else:
            consent_withdraw(contact=contact, topic=data["topic"], method=method, source=source)
        return Response(ContactConsentStateSerializer(consent_state(contact)).data)


def consent_state(contact: Contact) -> dict:
    topics = [
        {
            "topic": topic.key,
            "granted": bool(entry and entry.is_granted),
            "method": entry.method if entry else None,
            "occurred_at": entry.occurred_at if entry else None,
        }
        for topic, entry in consent_by_topic(contact=contact)
    ]
    reasons = suppressions_active_for(email=contact.email).values_list("reason", flat=True)
    return {"contact_id": contact.pk, "topics": topics, "suppressions": sorted(reasons)}


class CompanyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServerKeyViewSet):
    """Companies. Creating is an upsert by domain (or by name when there is no domain)."""

    queryset = Company.objects.all()
    serializer_class = CompanySerializer
    filterset_class = CompanyFilter

    @extend_schema(
        summary="Create or update a company by domain",
        request=CompanyUpsertSerializer,
        responses={200: CompanySerializer},
    )
    def create(self, request):
        company = company_upsert(**validated(CompanyUpsertSerializer, request))
        return Response(CompanySerializer(company).data)


class DealViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServerKeyViewSet):
    """Deals. PATCH moves a deal to another stage (lost needs lost_reason)."""

    queryset = Deal.objects.select_related("stage")
    serializer_class = DealSerializer
    filterset_class = DealFilter

    @extend_schema(
        summary="Open a deal", request=DealCreateSerializer, responses={201: DealSerializer}
    )
    def create(self, request):
        deal = deal_create(**validated(DealCreateSerializer, request))
        return Response(DealSerializer(deal).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Move a deal to another stage", request=DealMoveSerializer, responses=DealSerializer
    )
    def partial_update(self, request, pk=None):
        deal = self.get_object()
        data = validated(DealMoveSerializer, request)
        deal = deal_move_stage(deal=deal, **data)
        return Response(DealSerializer(deal).data)


# --- Anything else under /api/v1/ ------------------------------------------------------------


class ApiNotFoundView(APIView):
    """A JSON 404 for any path under /api/v1/ that names no endpoint (`/contacts/abc/export/`).

    Without it Django answers those with its HTML page, which API clients cannot parse.
    """

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    schema = None  # not an endpoint: kept out of the OpenAPI schema

    def initial(self, request, *args, **kwargs):
        raise NotFound("There is no such endpoint or object; see /api/v1/docs/.")


# --- The tracking snippet -------------------------------------------------------------------


@functools.cache
def snippet_source() -> bytes:
    return SNIPPET_PATH.read_bytes()


def snippet_etag(request) -> str:
    return hashlib.sha256(snippet_source()).hexdigest()[:32]


@require_GET
@condition(etag_func=snippet_etag)
def tracking_snippet(request):
    """Serve nextstep.js, the first-party tracking snippet websites embed."""
    response = HttpResponse(snippet_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={SNIPPET_MAX_AGE_SECONDS}"
    return response
