/* The handoff queue: a click anywhere on a row opens that handoff, as its link does.
 * Clicks on links, checkboxes and buttons keep their own meaning. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#result_list tbody tr").forEach(function (row) {
      var link = row.querySelector("a.handoff-link");
      if (!link) {
        return;
      }
      row.dataset.href = link.href;
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, input, button, label, select")) {
          return;
        }
        window.location.href = link.href;
      });
    });
  });
})();
