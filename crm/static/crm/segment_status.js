/* The segment page just after saving: poll the segment's status until the background
 * evaluation has counted its members, then show the count (no reload needed). */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var GIVE_UP_AFTER = 90; // three minutes: past that, the worker is not running.

  document.addEventListener("DOMContentLoaded", function () {
    var line = document.getElementById("segment-member-count");
    if (!line || !line.dataset.statusUrl) {
      return;
    }
    var before = line.dataset.evaluatedAt || "";
    var polls = 0;

    function show(status) {
      var count = status.member_count;
      line.textContent =
        count + (count === 1 ? " member" : " members") +
        " · last fully evaluated: " + status.last_evaluated_label;
    }

    function poll() {
      polls += 1;
      fetch(line.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (status) {
          if (status.last_evaluated_at && status.last_evaluated_at !== before) {
            show(status);
          } else if (polls < GIVE_UP_AFTER) {
            window.setTimeout(poll, POLL_MS);
          } else {
            line.textContent = "Still evaluating: is the worker (qcluster) running? Reload to check.";
          }
        })
        .catch(function () {
          if (polls < GIVE_UP_AFTER) {
            window.setTimeout(poll, POLL_MS);
          }
        });
    }
    window.setTimeout(poll, 500);
  });
})();
