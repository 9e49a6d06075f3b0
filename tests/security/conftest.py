"""The sequence fixtures (frozen clock, consenting contact) for the security tests."""

from tests.sequences.conftest import clock, consenting_contact, newsletter  # noqa: F401
