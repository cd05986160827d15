// The console's only script: live fragments over Server-Sent Events, and "select all" for the
// dead letters. Every page reads without it.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (el) {
  if (!window.EventSource) return;
  var es = new EventSource(el.dataset.live);
  es.addEventListener("update", function (e) {
    var focused = document.activeElement && document.activeElement.id;
    el.innerHTML = e.data;
    el.dataset.updated = String(Date.now());
    if (focused) { var f = document.getElementById(focused); if (f) f.focus(); }
  });
});
var all = document.getElementById("select-all");
if (all) {
  all.hidden = false;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="dl"]').forEach(function (c) { c.checked = all.checked; });
  });
}
