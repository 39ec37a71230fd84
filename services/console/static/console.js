// Live updates: on each server-sent "change", re-read every [data-live] fragment.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector("[data-live]")) {
    return;
  }
  var pending = false;
  function refresh() {
    pending = false;
    document.querySelectorAll("[data-live]").forEach(function (element) {
      fetch(element.getAttribute("data-live"), { credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/signin");
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null) {
            element.innerHTML = html;
          }
        })
        .catch(function () { /* the next change retries */ });
    });
  }
  function schedule() {
    if (!pending) {
      pending = true;
      window.setTimeout(refresh, 50);
    }
  }
  var source = new EventSource("/events");
  // Re-read on (re)connecting too: whatever happened between the page and the stream.
  source.addEventListener("open", schedule);
  source.addEventListener("change", schedule);
}());
