// A sending campaign's progress bars, refreshed from progress.json every few seconds until the
// campaign ends; without this script the page shows the figures of when it was loaded.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  var url = box && box.getAttribute("data-progress-url");
  if (!url) return;
  var queued = document.getElementById("bar-queued");
  var sent = document.getElementById("bar-sent");
  var text = document.getElementById("progress-text");

  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return;
        queued.max = p.audience_total || 1;
        queued.value = p.queued;
        queued.textContent = p.queued_percent + " %";
        sent.max = p.queued || 1;
        sent.value = p.sent;
        sent.textContent = p.sent_percent + " %";
        text.textContent = p.text;
        if (!p.done) setTimeout(tick, 5000);
      })
      .catch(function () { setTimeout(tick, 15000); });
  }
  setTimeout(tick, 5000);
})();
