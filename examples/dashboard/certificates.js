// The dashboard's certificate panel: every charger's certificates with a known expiry, the
// soonest first (GET /api/certificates), refreshed every 30 seconds. Fewer than 30 days left
// (or expired) is marked.
"use strict";

(function () {
  const body = document.querySelector("#certificates tbody");
  const empty = document.querySelector("#no-certificates");
  if (!body) return;
  const esc = (v) => String(v === null || v === undefined ? "" : v)
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  async function refresh() {
    try {
      const res = await fetch("/api/certificates?limit=50");
      if (!res.ok) return;
      const rows = await res.json();
      body.innerHTML = rows.map((c) => {
        const soon = c.daysLeft !== null && c.daysLeft < 30;
        return `<tr${soon ? ' class="expiring"' : ""}><td>${esc(c.charger)}</td><td>${esc(c.kind)}</td>` +
          `<td>${esc(c.subject)}</td><td>${esc(new Date(c.notAfter).toLocaleDateString())}</td>` +
          `<td>${esc(c.daysLeft)}</td></tr>`;
      }).join("");
      empty.hidden = rows.length > 0;
    } catch (_) { /* the next refresh tries again */ }
  }
  refresh();
  setInterval(refresh, 30000);
})();
