"""/api/v1/sequences/: list sequences and enroll a contact (server keys only).

Enrolling goes through the same service as the admin; the send gate still decides
every email, so enrolling someone never sends to a person who may not be emailed.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from crm.api.serializers import ApiErrorSerializer
from crm.api.views import ServerKeyViewSet, validated
from crm.models import Contact
from sequences.api.serializers import (
    EnrollmentSerializer,
    EnrollRequestSerializer,
    SequenceSerializer,
)
from sequences.models import Sequence
from sequences.services import enrollment_create


class EnrollConflict(APIException):
    """The request is valid, but the sequence or the contact's state refuses it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


CONFLICT = OpenApiResponse(
    ApiErrorSerializer,
    description="The sequence is not active (sequence_inactive), the contact is already in it "
    "(already_enrolled), its re-enrollment policy refuses (reenrollment_refused) or the "
    "contact is outside its audience (outside_audience).",
)


class SequenceViewSet(mixins.ListModelMixin, ServerKeyViewSet):
    """Sequences, highest priority first; enroll contacts into active ones."""

    queryset = Sequence.objects.select_related("topic", "current_version")
    serializer_class = SequenceSerializer
    lookup_field = "key"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    filter_backends = []

    @extend_schema(summary="List sequences")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Enroll a contact",
        description="Enrolls a contact (by id or email) through the normal enrollment rules: "
        "re-enrollment policy and audience. Every email still passes the send gate "
        "(consent, suppressions, quiet hours).",
        request=EnrollRequestSerializer,
        responses={201: EnrollmentSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def enroll(self, request, key=None):
        sequence = self.get_object()
        data = validated(EnrollRequestSerializer, request)
        contact = _contact(data)
        if sequence.status != Sequence.Status.ACTIVE or sequence.current_version is None:
            raise EnrollConflict(
                f"Sequence {sequence.key!r} is {sequence.status}: only an active sequence "
                "takes new contacts.",
                code="sequence_inactive",
            )
        try:
            enrollment = enrollment_create(contact=contact, sequence=sequence, source="api")
        except ValidationError as exc:
            raise EnrollConflict("; ".join(exc.messages), code=exc.code or "conflict") from None
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)


def _contact(data: dict) -> Contact:
    if data.get("contact"):
        field, contact = "contact", Contact.objects.filter(pk=data["contact"]).first()
    else:
        field, contact = "email", Contact.objects.filter(email=data["email"]).first()
    if contact is None:
        raise serializers.ValidationError({field: ["There is no contact with this " + field + "."]})
    return contact
