"""Privacy requests over the API: one contact's data export (server keys only)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.permissions import IsServerKey
from crm.models import Contact
from crm.services import contact_export


class ContactExportView(APIView):
    permission_classes = [IsServerKey]

    @extend_schema(
        operation_id="contacts_export",
        summary="Export one contact's data",
        description=(
            "Everything Nextstep holds about the person: profile, consent ledger, "
            "suppressions, activities, deals, tasks, notes, sequence messages and scores."
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk: int):
        contact = get_object_or_404(Contact, pk=pk)
        return Response(contact_export(contact=contact))
