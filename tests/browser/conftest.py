"""The segment builder test's Chromium fixtures, shared with the browser tests here."""

from tests.crm.segments.test_builder_browser import (  # noqa: F401  (pytest fixtures)
    browser_page,
    migrated_rows_restored,
)
