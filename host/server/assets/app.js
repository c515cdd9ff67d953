// Sundial dashboard: the one script. Every page reads without it; it adds
// - the live log tail of a running run (server-sent events from /runs/{id}/tail), and
// - live sections: an element with data-refresh="SECONDS" and an id is fetched again
//   with its page every SECONDS while the tab is visible, and replaced in place.
// No inline script anywhere (the Content-Security-Policy forbids it); no eval.
"use strict";

(function () {
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = String(text);
    row.appendChild(td);
  }

  function tail(table) {
    if (!window.EventSource) return;
    var body = table.querySelector("tbody");
    var state = document.getElementById("tail-state");
    var source = new EventSource(table.getAttribute("data-tail"));
    var say = function (text) { if (state) state.textContent = text; };
    say("Following the log…");
    source.addEventListener("attempt", function (e) {
      body.textContent = "";
      say("Following attempt " + e.data + "…");
    });
    source.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      var row = document.createElement("tr");
      cell(row, line.at_ms);
      cell(row, line.level);
      cell(row, line.origin);
      cell(row, line.message);
      body.appendChild(row);
      table.hidden = false;
    });
    source.addEventListener("end", function (e) {
      source.close();
      say("The run ended: " + e.data + ". Reload for its output.");
      var reload = document.getElementById("tail-reload");
      if (reload) reload.hidden = false;
    });
  }

  function refresh(element) {
    var seconds = parseInt(element.getAttribute("data-refresh"), 10);
    if (!(seconds > 0) || !element.id) return;
    window.setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(element.id);
          if (fresh) element.replaceChildren.apply(element, Array.prototype.slice.call(fresh.childNodes));
        })
        .catch(function () {});
    }, seconds * 1000);
  }

  document.querySelectorAll("[data-tail]").forEach(tail);
  document.querySelectorAll("[data-refresh]").forEach(refresh);
})();
