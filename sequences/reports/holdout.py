"""The holdout group: contacts enrolled in a sequence but never mailed by it.

Assignment is a pure function of (sequence key, contact id): stable across processes,
restarts and re-enrollments, and independent of everything else about the contact, so
the held-out and mailed groups differ only by chance. The send gate refuses a held-out
contact's email with reason `holdout` (sequences/gate.py); the report compares the two
groups (selectors.py). Imports nothing of the app so the gate can use it freely.
"""

import hashlib

#: Buckets per contact: shares are whole percent, a bucket is 0.01%.
BUCKETS = 10_000
MAX_HOLDOUT_PERCENT = 50


def holdout_bucket(*, sequence_key: str, contact_id: int) -> int:
    """The contact's bucket (0-9999) for this sequence: a SHA-256 of key and id."""
    digest = hashlib.sha256(f"holdout:{sequence_key}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def is_held_out(*, sequence_key: str, contact_id: int, percent: int) -> bool:
    """Is the contact in the sequence's holdout group at this share (0-50 percent)?"""
    if percent <= 0:
        return False
    share = min(percent, MAX_HOLDOUT_PERCENT) * BUCKETS // 100
    return holdout_bucket(sequence_key=sequence_key, contact_id=contact_id) < share
