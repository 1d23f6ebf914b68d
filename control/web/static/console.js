// Live pages: one EventSource per page; a "changed" event makes htmx re-read the parts of the
// page marked data-live (they re-query the database; the event's data is never used). Every
// htmx request carries the session's CSRF token.
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (e) {
    var token = document.body.dataset.csrf;
    if (token) { e.detail.headers["X-CSRF-Token"] = token; }
  });
  if (!document.querySelector("[data-live]") || !window.EventSource) { return; }
  var source = new EventSource("/events");
  var pending = null;
  source.addEventListener("changed", function () {
    if (pending) { return; }
    pending = setTimeout(function () {
      pending = null;
      document.body.dispatchEvent(new Event("allocator:changed"));
    }, 50);
  });
  document.body.addEventListener("htmx:afterSwap", function () {
    var live = document.getElementById("live");
    if (live) { live.textContent = "Live: updated " + new Date().toLocaleTimeString() + "."; }
  });
})();
