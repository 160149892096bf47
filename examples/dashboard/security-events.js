// The dashboard's security-event panel: the latest events chargers reported
// (SecurityEventNotification), from GET /api/security-events, refreshed every 5 seconds.
"use strict";

(function () {
  const body = document.querySelector("#security-events tbody");
  const empty = document.querySelector("#no-security-events");
  if (!body) return;
  const esc = (v) => String(v === null || v === undefined ? "" : v)
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  async function refresh() {
    try {
      const res = await fetch("/api/security-events?limit=20");
      if (!res.ok) return;
      const rows = await res.json();
      body.innerHTML = rows.map((e) =>
        `<tr><td>${esc(new Date(e.at).toLocaleString())}</td><td>${esc(e.charger)}</td>` +
        `<td>${esc(e.kind)}</td><td>${esc(e.techInfo)}</td></tr>`).join("");
      empty.hidden = rows.length > 0;
    } catch (_) { /* the next refresh tries again */ }
  }
  refresh();
  setInterval(refresh, 5000);
})();
