"""Pieces the crm admins share: ledger permissions, big-table settings, owner pickers."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models

from crm.admin.pagination import BigListMixin


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved `obj` stand for the row a service saved.

    The admin keeps using the object it built after save_model (change message,
    inline formsets, redirect), so it must carry the saved primary key and values.
    """
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


class NoEditMixin:
    """Rows that are never edited or deleted, whoever asks (ledgers, logs)."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        # Viewing a row shows all of it as proof, not just what the add form asks for.
        return [field.name for field in self.model._meta.fields if not field.primary_key]


class ReadOnlyMixin(NoEditMixin):
    """Rows only services write: the admin shows them and nothing more."""

    def has_add_permission(self, request, obj=None):
        return False


class BigTableMixin(BigListMixin):
    """Tables with millions of rows: estimated or capped counts, no facet counts."""

    show_facets = admin.ShowFacets.NEVER


class OwnerFieldMixin:
    """Search owners when the user may browse users; otherwise pick them from a list.

    The owner autocomplete asks the user admin, which needs auth's view_user
    permission; the staff roles do not grant it, so their members would get an
    empty search. A plain select of the (few) staff users works for everyone.
    """

    def get_autocomplete_fields(self, request):
        return searchable_fields(request, super().get_autocomplete_fields(request))


def searchable_fields(request, fields) -> tuple[str, ...]:
    """The autocomplete fields this user can search: owners only with auth's view_user."""
    opts = get_user_model()._meta
    if request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
        return tuple(fields)
    return tuple(name for name in fields if name != "owner")
