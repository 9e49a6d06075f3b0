"""CSV import and export of contacts (django-import-export), routed through crm's services."""

from import_export.admin import ImportExportModelAdmin


class ContactImportExportMixin(ImportExportModelAdmin):
    """Adds import (with preview and a per-row error report) and export to the contact admin."""
