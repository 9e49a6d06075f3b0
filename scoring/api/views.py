"""/api/v1/handoffs/: read the handoff queue and work it from another tool (server keys)."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from crm.api.views import ServerKeyViewSet
from scoring.api.filters import HandoffFilter
from scoring.api.serializers import (
    HandoffActionSerializer,
    HandoffClaimSerializer,
    HandoffCloseSerializer,
    HandoffSerializer,
)
from scoring.models import Handoff
from scoring.services import (
    handoff_accept,
    handoff_claim,
    handoff_mark_contacted,
    handoff_recycle,
    handoff_reject,
)


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class HandoffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServerKeyViewSet):
    """Leads handed to sales. Actions change them through the same services as the admin."""

    queryset = Handoff.objects.select_related("contact", "rule")
    serializer_class = HandoffSerializer
    filterset_class = HandoffFilter
    parser_classes = [JSONParser]

    def _act(self, service, serializer_class, request) -> Response:
        handoff = self.get_object()
        handoff = service(handoff=handoff, **_validated(serializer_class, request))
        return Response(HandoffSerializer(self.get_queryset().get(pk=handoff.pk)).data)

    @extend_schema(summary="Claim a handoff", request=HandoffClaimSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        return self._act(handoff_claim, HandoffClaimSerializer, request)

    @extend_schema(summary="Mark a handoff contacted", request=HandoffActionSerializer)
    @action(detail=True, methods=["post"])
    def contacted(self, request, pk=None):
        return self._act(handoff_mark_contacted, HandoffActionSerializer, request)

    @extend_schema(
        summary="Accept: open a deal, make an opportunity", request=HandoffActionSerializer
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._act(handoff_accept, HandoffActionSerializer, request)

    @extend_schema(summary="Recycle to nurture (reason required)", request=HandoffCloseSerializer)
    @action(detail=True, methods=["post"])
    def recycle(self, request, pk=None):
        return self._act(handoff_recycle, HandoffCloseSerializer, request)

    @extend_schema(summary="Reject as not a fit (reason required)", request=HandoffCloseSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._act(handoff_reject, HandoffCloseSerializer, request)
