// Fill every hidden `time_zone` field with the browser's IANA time zone (e.g. Europe/Berlin),
// so double-opt-in contacts get quiet hours on their own clock. The server validates it.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  var fields = document.querySelectorAll('input[name="time_zone"]');
  for (var i = 0; i < fields.length; i++) {
    if (!fields[i].value) {
      fields[i].value = zone;
    }
  }
})();
