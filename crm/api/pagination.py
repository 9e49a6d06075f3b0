"""Cursor pagination: stable while rows are added, and cheap on big tables."""

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from crm.api.filters import MAX_ID


class ApiCursorPagination(CursorPagination):
    # The primary key never changes and is unique, so a cursor never skips or repeats a row.
    ordering = "-pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        # DRF answers a bad cursor with 404; it is a bad parameter, so a 400 naming it.
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError(
                {"cursor": ["This cursor is not one we gave out; follow `next` or `previous`."]}
            ) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        # A hand-made cursor may carry any text as the position: it must be a row's id.
        if not position.isdigit() or not 1 <= int(position) <= MAX_ID:
            raise serializers.ValidationError(
                {"cursor": ["This cursor is not one we gave out; follow `next` or `previous`."]}
            )

    def get_page_size(self, request):
        # DRF silently falls back to the default on a bad page_size; say what is wrong.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError(
                {"page_size": [f"Give a whole number from 1 to {self.max_page_size:,}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                }
        return parameters
