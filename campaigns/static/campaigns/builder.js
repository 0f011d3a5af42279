// The campaign builder's live parts: the audience count and the template previews follow the
// form without a reload. The page works without this script (the count and previews are drawn
// on save); the endpoints return numbers and sample text only, never a patient.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) return;
  var countUrl = form.getAttribute("data-count-url");
  var previewUrl = form.getAttribute("data-preview-url");
  var countEl = document.getElementById("audience-count");
  var panel = countEl ? countEl.closest(".count-panel") : null;
  var previews = document.getElementById("previews");
  var pending = null;
  var serial = 0;

  function value(name) {
    var el = form.elements[name];
    return el ? el.value : "";
  }

  function channels() {
    var out = [];
    ["channel_1", "channel_2", "channel_3"].forEach(function (n) {
      var v = value(n);
      if (v && out.indexOf(v) === -1) out.push(v);
    });
    return out;
  }

  function refreshCount() {
    var audience = value("audience");
    var chosen = channels();
    if (!audience || !chosen.length || !value("purpose")) return;
    var mine = ++serial;
    var query = new URLSearchParams({ audience: audience, purpose: value("purpose"), channels: chosen.join(",") });
    panel && panel.classList.add("is-loading");
    fetch(countUrl + "?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (mine !== serial) return; // a newer request is on its way
        panel && panel.classList.remove("is-loading");
        panel && panel.classList.toggle("is-error", !res.ok);
        countEl.textContent = res.ok ? res.body.text : res.body.error;
      })
      .catch(function () {
        panel && panel.classList.remove("is-loading");
      });
  }

  function scheduleCount() {
    clearTimeout(pending);
    pending = setTimeout(refreshCount, 250);
  }

  // Only the chosen channels' template selects are shown; the others would be ignored on save.
  function showSlots() {
    var chosen = channels();
    form.querySelectorAll(".tpl-slot").forEach(function (slot) {
      slot.classList.toggle("is-unused", chosen.indexOf(slot.getAttribute("data-channel")) === -1);
    });
  }

  function previewCard(id, data, label) {
    var card = document.createElement("article");
    card.className = "preview";
    card.setAttribute("data-template", id);
    var h = document.createElement("h3");
    h.textContent = label;
    card.appendChild(h);
    if (data.problems && data.problems.length) {
      var err = document.createElement("div");
      err.className = "form-error";
      err.textContent = data.problems.join(" ");
      card.appendChild(err);
      return card;
    }
    if (data.subject) {
      var s = document.createElement("p");
      s.textContent = data.subject;
      card.appendChild(s);
    }
    var text = document.createElement("div");
    text.className = "preview__text mono";
    data.body.split("\n").forEach(function (line, i) {
      if (i) text.appendChild(document.createElement("br"));
      text.appendChild(document.createTextNode(line));
    });
    card.appendChild(text);
    if (data.sms_text) {
      var sms = document.createElement("p");
      sms.className = "hint preview__sms";
      sms.textContent = data.sms_text;
      card.appendChild(sms);
    }
    return card;
  }

  function refreshPreviews() {
    if (!previews) return;
    var chosen = channels();
    var selects = Array.prototype.filter.call(form.querySelectorAll("select.tpl-select"), function (s) {
      return s.value && chosen.indexOf(s.getAttribute("data-channel")) !== -1;
    });
    var kept = {};
    selects.forEach(function (s) { kept[s.value] = true; });
    previews.querySelectorAll(".preview").forEach(function (card) {
      if (!kept[card.getAttribute("data-template")]) card.remove();
    });
    selects.forEach(function (s) {
      if (previews.querySelector('.preview[data-template="' + s.value + '"]')) return;
      var label = (s.labels && s.labels[0] ? s.labels[0].textContent : "") + " · " + s.options[s.selectedIndex].text;
      fetch(previewUrl + "?template=" + encodeURIComponent(s.value), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          var hint = previews.querySelector("p.hint");
          if (hint) hint.remove();
          previews.appendChild(previewCard(s.value, data, label));
        });
    });
  }

  // The two times matter only for "at" and "window"; "now" hides them.
  function showTimes() {
    var checked = form.querySelector('input[name="schedule"]:checked');
    var times = form.querySelector(".schedule-times");
    if (times) times.classList.toggle("is-unused", !checked || checked.value === "now");
  }

  form.addEventListener("change", function (event) {
    var name = event.target.name || "";
    if (name === "schedule") showTimes();
    if (name === "audience" || name === "purpose" || name.indexOf("channel_") === 0) {
      scheduleCount();
      showSlots();
      refreshPreviews();
    }
    if (name.indexOf("tpl_") === 0) refreshPreviews();
  });
  showSlots();
  showTimes();
})();
