// Live updates without a reload: a page whose <main> has data-live="ms" fetches a fresh
// copy of itself (?fragment=1, rendered by the server from the same data as its JSON API)
// and swaps it in. Polling stops when the new copy has no data-live (a finished run).
"use strict";

(function () {
  function stamp(text) {
    var el = document.getElementById("updated");
    if (el) el.textContent = text;
  }

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    return url.toString();
  }

  function schedule(main, polled) {
    var every = parseInt(main.getAttribute("data-live") || "0", 10);
    if (every > 0) window.setTimeout(poll, every);
    else if (polled) stamp("Finished; last updated " + new Date().toLocaleTimeString());
  }

  function poll() {
    fetch(fragmentUrl(), {headers: {"Accept": "text/html"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.querySelector("main");
        var current = document.getElementById("main");
        if (!fresh || !current) return;
        if (document.activeElement && current.contains(document.activeElement) &&
            document.activeElement.tagName === "BUTTON") {
          schedule(current, true);  // don't pull a button from under a click
          return;
        }
        current.replaceWith(fresh);
        stamp("Updated " + new Date().toLocaleTimeString());
        schedule(fresh, true);
      })
      .catch(function (err) {
        stamp("Update failed (" + err.message + "), retrying");
        window.setTimeout(poll, 5000);
      });
  }

  // Buttons that destroy something ask first (no inline handlers: the CSP forbids them).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    if (main) schedule(main, false);
  });
})();
