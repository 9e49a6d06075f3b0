/*! Nextstep tracking snippet. docs/events.md has the copy-paste example.
 *
 *   <script defer src="https://crm.example.com/t/nextstep.js" data-key="ns_live_…"></script>
 *
 * Keeps a random visitor id in a first-party cookie (ns_aid, one year), records
 * page_viewed when the page loads, and offers:
 *   nextstep.track(type, properties)   record an event, e.g. track("demo_requested", {plan: "pro"})
 *   nextstep.identify(email, traits)   tie this visitor to a person, e.g. after a form
 *   nextstep.page()                    record another page view (single-page apps)
 *   nextstep.reset()                   forget the visitor id (call on log-out)
 * Calls made before this file loads are queued in window.nextstep.q by the stub
 * in the docs and replayed here. Options on the script tag:
 *   data-key             a browser API key (required)
 *   data-api             Nextstep's address, if not where this file came from
 *   data-auto-page-view  "false" to record page views yourself with nextstep.page()
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.key) {
    console.warn('nextstep.js: add data-key="ns_live_…" (a browser API key) to the script tag.');
    return;
  }
  var KEY = script.dataset.key;
  var API = (script.dataset.api || new URL(script.src).origin).replace(/\/+$/, "") + "/api/v1/";
  var COOKIE = "ns_aid";
  var ONE_YEAR_SECONDS = 365 * 24 * 3600;
  var UTM_TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

  function randomId() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    return "v" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function readCookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function writeCookie(name, value, maxAgeSeconds) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie =
      name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAgeSeconds +
      "; Path=/; SameSite=Lax" + secure;
  }

  function anonymousId() {
    var id = readCookie(COOKIE) || randomId();
    writeCookie(COOKIE, id, ONE_YEAR_SECONDS); // each visit keeps the id for another year
    return id;
  }

  function clip(text, length) {
    return String(text || "").slice(0, length);
  }

  function context() {
    var result = {
      page_url: clip(location.href, 2000),
      page_title: clip(document.title, 500),
      referrer: clip(document.referrer, 2000),
      user_agent: clip(navigator.userAgent, 500),
      locale: clip(navigator.language, 35),
    };
    var query = new URLSearchParams(location.search);
    UTM_TAGS.forEach(function (tag) {
      if (query.get(tag)) {
        result[tag] = clip(query.get(tag), 200);
      }
    });
    return result;
  }

  function post(path, body, keepalive) {
    return fetch(API + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: keepalive, // still delivered when the visitor follows a link away
      headers: { Authorization: "Bearer " + KEY, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  function send(path, body) {
    return post(path, body, true)
      .catch(function () {
        // Older Chromium refuses keepalive on requests that need a CORS preflight.
        return post(path, body, false);
      })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            console.warn("nextstep.js: " + response.status + " " + (data.message || ""), data);
          }
          return data;
        });
      })
      .catch(function (error) {
        console.warn("nextstep.js: could not reach Nextstep.", error);
      });
  }

  function track(type, properties) {
    return send("events/", {
      type: type,
      anonymous_id: anonymousId(),
      occurred_at: new Date().toISOString(),
      properties: properties || {},
      context: context(),
    });
  }

  function page() {
    return track("page_viewed", {
      url: clip(location.href, 2000),
      path: location.pathname,
      title: document.title,
      referrer: document.referrer,
    });
  }

  function identify(email, traits) {
    return send("identify/", {
      anonymous_id: anonymousId(),
      email: email,
      traits: traits || {},
      context: context(),
    });
  }

  function reset() {
    writeCookie(COOKIE, "", 0);
  }

  var queued = (window.nextstep && window.nextstep.q) || [];
  var nextstep = {
    track: track,
    identify: identify,
    page: page,
    reset: reset,
    anonymousId: anonymousId,
  };
  window.nextstep = nextstep;

  if (script.dataset.autoPageView !== "false") {
    page();
  }
  queued.forEach(function (call) {
    if (typeof nextstep[call[0]] === "function") {
      nextstep[call[0]].apply(null, call[1]);
    }
  });
})();
