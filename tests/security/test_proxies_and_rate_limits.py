"""Finding 19: the client address behind trusted proxies, for rate limits and consent proof."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, RequestFactory

from crm.client_ip import client_ip, rate_limit_key
from crm.models import ConsentEntry, ConsentTopic
from crm.services import consent_text_publish

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def wording(db):
    topic = ConsentTopic.objects.get(key="newsletter")
    return consent_text_publish(topic=topic, text="Yes, send me the monthly newsletter.")


def request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("count", "proxies", "remote", "forwarded", "expected"),
    [
        # No proxy configured: the header is anyone's to write, so it is ignored.
        (0, [], "203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # One proxy appends the client: the right-most entry, never the spoofed left one.
        (1, [], PROXY, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Two proxies (a CDN then nginx): the second from the right.
        (2, [], PROXY, "6.6.6.6, 198.51.100.1, 192.0.2.10", "198.51.100.1"),
        # A request that bypassed the proxy has fewer hops: only REMOTE_ADDR is believed.
        (2, [], "198.51.100.9", "", "198.51.100.9"),
        # Named proxies: the right-most hop that is not one of them.
        (0, ["10.0.0.0/8"], PROXY, "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        # A direct request from outside the proxy network: its header is not believed.
        (0, ["10.0.0.0/8"], "198.51.100.9", "6.6.6.6", "198.51.100.9"),
        (1, [], PROXY, "not-an-ip", PROXY),
        (1, [], PROXY, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(
    settings, count, proxies, remote, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = count
    settings.TRUSTED_PROXIES = proxies

    assert client_ip(request(remote, forwarded)) == expected


def test_ipv6_clients_are_counted_per_64():
    assert rate_limit_key("2001:db8:1:2::1") == rate_limit_key("2001:db8:1:2:ffff::9")
    assert rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("198.51.100.1") == "198.51.100.1"


def unsubscribe_burst(client, forwarded: str, times: int) -> list[int]:
    return [
        client.get(
            "/unsubscribe/not-a-token/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded
        ).status_code
        for _ in range(times)
    ]


def test_behind_a_proxy_one_client_spending_its_limit_leaves_others_alone(settings, client):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.PUBLIC_RATE_LIMITS = {**settings.PUBLIC_RATE_LIMITS, "unsubscribe": 5}

    greedy = unsubscribe_burst(client, "198.51.100.1", 6)
    other = unsubscribe_burst(client, "198.51.100.2", 1)

    assert greedy[-1] == 429
    assert other == [404]


def test_without_the_setting_everyone_behind_the_proxy_shares_one_limit(settings, client):
    settings.PUBLIC_RATE_LIMITS = {**settings.PUBLIC_RATE_LIMITS, "unsubscribe": 5}

    unsubscribe_burst(client, "198.51.100.1", 6)

    assert unsubscribe_burst(client, "198.51.100.2", 1) == [429]


def test_page_views_do_not_spend_the_sign_up_budget(settings, client, wording):
    settings.PUBLIC_RATE_LIMITS = {**settings.PUBLIC_RATE_LIMITS, "subscribe": 3}

    views = [client.get("/subscribe/").status_code for _ in range(10)]
    posts = [
        client.post("/subscribe/", {"email": f"p{n}@example.com", "topic": "newsletter"})
        for n in range(4)
    ]

    assert set(views) == {200}
    assert [response.status_code for response in posts] == [200, 200, 200, 429]


def test_consent_proof_records_the_client_not_the_proxy(settings, wording):
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1")
    client.post("/subscribe/", {"email": "nia@example.com", "topic": "newsletter"})
    [message] = mail.outbox
    path = re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", message.body).group(1)

    client.post(path)

    assert ConsentEntry.objects.get().ip_address == "198.51.100.1"


def settings_from(**env: str) -> subprocess.CompletedProcess:
    """Load config.settings in a fresh process with this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TRUSTED_"))}
    probe = (
        "import json, config.settings as s; "
        "print(json.dumps([s.PUBLIC_RATE_LIMITS, s.TRUSTED_PROXY_COUNT, s.TRUSTED_PROXIES]))"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        env={**clean, "DEBUG": "1", **env},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_limits_and_proxies_come_from_the_environment():
    result = settings_from(
        PUBLIC_RATE_LIMIT_SUBSCRIBE="25", TRUSTED_PROXY_COUNT="1", TRUSTED_PROXIES="10.0.0.0/8"
    )

    limits, count, proxies = json.loads(result.stdout)
    assert limits["subscribe"] == 25 and limits["unsubscribe"] == 60
    assert (count, proxies) == (1, ["10.0.0.0/8"])


def test_a_bad_proxy_address_stops_start_up():
    result = settings_from(TRUSTED_PROXIES="10.0.0.0/8,proxy.internal")

    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.internal' is not an IP address" in result.stderr
