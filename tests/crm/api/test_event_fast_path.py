"""The common-shape check (CommonEventShape) agrees with EventSerializer on every input.

It either returns exactly what the serializer returns, or None (the serializer then
decides, and its errors are what the sender gets). It never accepts what DRF refuses.
"""

import datetime

import pytest
from rest_framework import serializers

from crm.api.serializers import CommonEventShape, EventSerializer

NOW = datetime.datetime.now(datetime.UTC)
SOON = (NOW + datetime.timedelta(hours=2)).isoformat()
LATE = (NOW + datetime.timedelta(days=3)).isoformat()

INPUTS = [
    {"type": "page_viewed", "email": "ada@example.com"},
    {"type": "page_viewed", "email": "  ada@example.com  ", "properties": {"path": "/x"}},
    {"type": "order_placed", "external_id": "u-1", "occurred_at": "2026-01-02T03:04:05Z"},
    {"type": "x", "anonymous_id": "v1", "occurred_at": "2026-01-02T03:04:05"},
    {"type": "x", "anonymous_id": "v1", "occurred_at": "2026-01-02T03:04:05+02:00"},
    {"type": "x", "anonymous_id": "v1", "occurred_at": SOON, "idempotency_key": " k "},
    {"type": "x", "anonymous_id": "v1", "properties": {"a": [1, {"b": None}], "c": 1.5}},
    {"type": "x", "email": "", "anonymous_id": "v1"},
    # Refused by DRF: the fast check must say None.
    {"type": "x", "anonymous_id": "v1", "occurred_at": LATE},
    {"type": "x", "anonymous_id": "v1", "occurred_at": ""},
    {"type": "x", "anonymous_id": "v1", "occurred_at": None},
    {"type": "x", "anonymous_id": "v1", "occurred_at": 5},
    {"type": "x", "anonymous_id": "v1", "occurred_at": "yesterday"},
    {"type": "Page Viewed", "email": "ada@example.com"},
    {"type": "", "email": "ada@example.com"},
    {"type": "x" * 65, "email": "ada@example.com"},
    {"type": "consent_granted", "email": "ada@example.com"},
    {"type": "identified", "email": "ada@example.com"},
    {"type": "page_viewed"},
    {"type": "page_viewed", "email": " ", "external_id": ""},
    {"type": "page_viewed", "email": "not-an-email"},
    {"type": "page_viewed", "email": "a" * 250 + "@example.com"},
    {"type": "page_viewed", "email": None},
    {"type": "page_viewed", "email": 5},
    {"type": "page_viewed", "external_id": "x" * 201},
    {"type": "page_viewed", "anonymous_id": "a\x00b"},
    {"type": "page_viewed", "anonymous_id": "v1", "properties": []},
    {"type": "page_viewed", "anonymous_id": "v1", "properties": None},
    {"type": "page_viewed", "anonymous_id": "v1", "properties": {"big": "x" * 17000}},
    {"type": "page_viewed", "anonymous_id": "v1", "colour": "red"},
    {"type": "page_viewed", "anonymous_id": "v1", "lead_score": 5},
    {"type": 5, "anonymous_id": "v1"},
    {"type": ["page_viewed"], "anonymous_id": "v1"},
    # Accepted by DRF but not the common shape: the serializer handles them.
    {"type": "page_viewed", "email": "zoë@example.com"},
    {"type": "page_viewed", "anonymous_id": "v1", "context": {"page_url": "/p"}},
    {"type": "page_viewed", "anonymous_id": 12345},
    "page_viewed",
    ["page_viewed"],
]


def drf(item):
    try:
        return EventSerializer().run_validation(item)
    except serializers.ValidationError as error:
        return error


@pytest.mark.parametrize("item", INPUTS, ids=range(len(INPUTS)))
def test_the_fast_check_returns_what_drf_returns_or_leaves_it_to_drf(item):
    fast = CommonEventShape()(item)
    expected = drf(item)
    if fast is None:
        return
    assert not isinstance(expected, serializers.ValidationError), expected.detail
    assert fast == dict(expected)


def test_the_common_shape_takes_the_fast_path():
    shape = CommonEventShape()
    taken = [index for index, item in enumerate(INPUTS[:8]) if shape(item) is not None]
    assert taken == [0, 1, 2, 4, 5, 6, 7]  # 3 is a naive time: the serializer decides its zone
