// Moves the import's progress bar by polling its JSON status; opens the result when done.
// Without JavaScript the page refreshes itself (a <noscript> meta refresh) instead.
(function () {
  "use strict";
  var bar = document.getElementById("import-progress");
  var counts = document.getElementById("import-counts");
  var heading = document.getElementById("progress-heading");
  if (!bar || !window.fetch) { return; }
  var statusUrl = bar.getAttribute("data-status-url");
  var template = counts ? counts.textContent.trim() : "";
  var delay = 1000;

  function show(status) {
    bar.value = status.percent;
    if (heading && status.state === "running" && heading.getAttribute("data-running")) {
      heading.textContent = heading.getAttribute("data-running");
    }
    bar.textContent = status.percent + "%";
    if (counts) {
      // Replace the numbers of the server-rendered sentence in order, keeping its language.
      var numbers = [status.processed, status.created, status.updated, status.unchanged, status.rejected];
      var i = 0;
      counts.textContent = template.replace(/\d+/g, function (match) {
        return i < numbers.length ? String(numbers[i++]) : match;
      });
    }
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (status) {
        show(status);
        if (status.finished) {
          window.location.assign(status.result_url);
          return;
        }
        delay = 1000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
