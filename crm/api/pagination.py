"""Cursor pagination: stable while rows are added, and cheap on big tables."""

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    # The primary key never changes and is unique, so a cursor never skips or repeats a row.
    ordering = "-pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
