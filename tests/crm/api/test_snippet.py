import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from crm.models import Activity
from tests.crm.api.conftest import SITE
from tests.factories import ContactFactory

SNIPPET = Path(settings.BASE_DIR) / "crm" / "static" / "crm" / "nextstep.js"

#: A page on the customer's site, as far as the snippet can tell: a cookie jar, the
#: script tag, and a fetch that records what would be sent.
PAGE = """
const jar = JSON.parse(process.argv[3]);
const sent = [];
globalThis.window = globalThis;
globalThis.location = new URL("__SITE__/pricing?utm_source=ads&utm_campaign=spring");
Object.defineProperty(globalThis, "navigator", {
  value: {userAgent: "node", language: "en-GB"}, configurable: true,
});
globalThis.document = {
  currentScript: {dataset: {key: "KEY"}, src: "http://testserver/t/nextstep.js"},
  title: "Pricing",
  referrer: "https://search.example/",
  get cookie() { return Object.entries(jar).map(([k, v]) => k + "=" + v).join("; "); },
  set cookie(text) {
    const [pair, ...attributes] = text.split("; ");
    const [name, value] = pair.split("=");
    if (attributes.includes("Max-Age=0")) delete jar[name]; else jar[name] = value;
  },
};
globalThis.fetch = (url, options) => {
  if (options.keepalive && process.env.REFUSE_KEEPALIVE) {
    return Promise.reject(new TypeError("Preflight with keepalive is not supported"));
  }
  sent.push({url, headers: options.headers, body: JSON.parse(options.body)});
  return Promise.resolve({ok: true, status: 200, json: () => Promise.resolve({})});
};
window.nextstep = {q: [["identify", ["ada@example.com", {first_name: "Ada"}]]]};
(0, eval)(require("fs").readFileSync(process.argv[2], "utf8"));
window.nextstep.track("demo_requested", {plan: "pro"});
setTimeout(() => console.log(JSON.stringify({sent, jar})), 0);
""".replace("__SITE__", SITE)


def run_page(tmp_path, jar: dict, env: dict | None = None) -> dict:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    page = tmp_path / "page.js"
    page.write_text(PAGE)
    output = subprocess.run(
        ["node", str(page), str(SNIPPET), json.dumps(jar)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    return json.loads(output.stdout)


@pytest.mark.django_db
def test_the_snippet_sends_what_the_api_accepts(tmp_path, browser_client, browser_key):
    ada = ContactFactory(email="ada@example.com", first_name="")
    page = run_page(tmp_path, jar={})

    sent = page["sent"]
    assert [request["url"] for request in sent] == [
        "http://testserver/api/v1/events/",
        "http://testserver/api/v1/identify/",
        "http://testserver/api/v1/events/",
    ]
    assert [request["body"].get("type") for request in sent] == [
        "page_viewed",
        None,
        "demo_requested",
    ]
    assert sent[0]["headers"]["Authorization"] == "Bearer KEY"
    assert sent[0]["body"]["properties"]["path"] == "/pricing"
    visitor = page["jar"]["ns_aid"]
    assert {request["body"]["anonymous_id"] for request in sent} == {visitor}

    statuses = [
        browser_client.post(request["url"], request["body"], format="json").status_code
        for request in sent
    ]

    # A browser key ties the visitor to a known contact but writes none of its traits.
    assert statuses == [200, 202, 200]
    ada.refresh_from_db()
    assert ada.first_name == ""
    assert set(Activity.objects.filter(anonymous_id=visitor).values_list("contact", flat=True)) == {
        ada.pk
    }


def test_the_snippet_keeps_the_visitor_id_from_its_cookie(tmp_path):
    page = run_page(tmp_path, jar={"ns_aid": "returning-visitor"})

    assert {request["body"]["anonymous_id"] for request in page["sent"]} == {"returning-visitor"}


@pytest.mark.django_db
def test_the_snippet_is_served_with_caching_headers(client):
    response = client.get("/t/nextstep.js")
    again = client.get("/t/nextstep.js", HTTP_IF_NONE_MATCH=response.headers["ETag"])

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert b"nextstep.identify" in response.content
    assert again.status_code == 304


def test_the_snippet_retries_without_keepalive_where_browsers_refuse_it(tmp_path):
    page = run_page(tmp_path, jar={}, env={"REFUSE_KEEPALIVE": "1"})

    assert len(page["sent"]) == 3
