// The dashboard's reservation panel: the newest reservations with their status
// (GET /api/reservations), a form to reserve an EVSE (or any EVSE) of a charger for a token
// (POST /api/chargers/{id}/reservations), a Cancel button on each held reservation
// (DELETE /api/reservations/{id}), and a button that pushes the token table to a charger as
// its local list (POST /api/chargers/{id}/local-list). Uses dashboard.js's `api`, `toast` and
// `esc`; refreshed every 10 seconds and after every action.
"use strict";

(function () {
  const body = document.querySelector("#reservations tbody");
  const empty = document.querySelector("#no-reservations");
  const form = document.querySelector("#reserve-form");
  const push = document.querySelector("#push-list");
  if (!body || !form) return;

  async function refresh() {
    try {
      const rows = await api("GET", "/api/reservations");
      body.innerHTML = rows.slice(0, 50).map((r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(r.charger)}</td><td>${r.evse === null ? "any" : esc(r.evse)}</td>` +
        `<td>${esc(r.idToken)}</td><td>${esc(new Date(r.expiresAt).toLocaleString())}</td>` +
        `<td class="${r.status === "Accepted" ? "warn" : ""}">${esc(r.status)}</td>` +
        `<td>${r.status === "Accepted" ? `<button class="operator-only" data-cancel="${esc(r.id)}">Cancel</button>` : ""}</td></tr>`
      ).join("");
      empty.hidden = rows.length > 0;
    } catch (_) { /* the next refresh tries again */ }
  }

  body.addEventListener("click", async (ev) => {
    const id = ev.target && ev.target.dataset ? ev.target.dataset.cancel : undefined;
    if (!id) return;
    try {
      const a = await api("DELETE", `/api/reservations/${encodeURIComponent(id)}`);
      toast(`Reservation ${id}: ${a.status}`, a.status !== "Accepted");
    } catch (e) {
      toast(`Reservation ${id}: ${e.message}`, true);
    }
    refresh();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const charger = form.elements.charger.value.trim();
    const evse = form.elements.evse.value.trim();
    const minutes = Number(form.elements.minutes.value || 30);
    const reservation = {
      idTag: form.elements.idTag.value.trim(),
      expiresAt: new Date(Date.now() + minutes * 60000).toISOString(),
    };
    if (evse !== "") reservation.evse = Number(evse);
    try {
      const r = await api("POST", `/api/chargers/${encodeURIComponent(charger)}/reservations`, reservation);
      toast(`${charger}: reservation ${r.id} ${r.status}`, r.status !== "Accepted");
    } catch (e) {
      toast(`${charger}: ${e.message}`, true);
    }
    refresh();
  });

  push.addEventListener("click", async () => {
    const charger = form.elements.charger.value.trim();
    try {
      const p = await api("POST", `/api/chargers/${encodeURIComponent(charger)}/local-list`);
      toast(`${charger}: local list version ${p.version} (${p.entries} tokens) ${p.status}`, p.status !== "Accepted");
    } catch (e) {
      toast(`${charger}: ${e.message}`, true);
    }
  });

  // The form is for operators and admins only (`operator-only`: hidden for viewers by
  // dashboard.css; the server refuses them anyway).
  refresh();
  setInterval(refresh, 10000);
})();
