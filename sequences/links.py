"""Signed links in emails: the unsubscribe URL (RFC 8058 one-click) and its token.

The tokens belong to crm (crm/links.py), whose public pages read them and change the
consent ledger; this module keeps sequences' names for them and adds the mailto.
"""

from django.conf import settings

from crm.links import (  # noqa: F401  (re-exported for sequences' callers)
    UNSUBSCRIBE_PATH,
    UNSUBSCRIBE_SALT,
    UnsubscribeRequest,
    unsubscribe_token,
    unsubscribe_token_read,
    unsubscribe_url,
)


def unsubscribe_mailto() -> str:
    """The optional mailto: for List-Unsubscribe, from SEQUENCES_UNSUBSCRIBE_MAILTO."""
    address = settings.SEQUENCES_UNSUBSCRIBE_MAILTO
    return f"mailto:{address}?subject=unsubscribe" if address else ""
