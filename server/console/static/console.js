// Portcullis console: applies the server-sent events of live parts.
// Every page works without this script; it only keeps live parts
// current. An element with data-live="URL" opens one EventSource on URL;
// each message is {"text": {id: text}, "html": {id: html}} and replaces
// the text (or, for HTML the console's own templates rendered, the
// content) of the elements with those IDs.
"use strict";
(function () {
  function apply(msg) {
    var u;
    try { u = JSON.parse(msg.data); } catch (e) { return; }
    var id, el;
    for (id in (u.text || {})) {
      el = document.getElementById(id);
      if (el) { el.textContent = u.text[id]; }
    }
    for (id in (u.html || {})) {
      el = document.getElementById(id);
      if (el) { el.innerHTML = u.html[id]; }
    }
  }
  function follow(el) {
    var url = el.getAttribute("data-live");
    if (!url || url.indexOf("/console/") !== 0) { return; }
    var es = new EventSource(url);
    es.onmessage = apply;
    // The session ended (signed out elsewhere, key revoked): stop, and let
    // the next navigation ask to sign in.
    es.addEventListener("ended", function () { es.close(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) { follow(live[i]); }
  });
})();
