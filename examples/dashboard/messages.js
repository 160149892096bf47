// The dashboard's display-message panel: a form to set a message on a charger
// (POST /api/chargers/{id}/display-messages), a List button that shows what the charger
// reports it holds (GET /api/chargers/{id}/display-messages) and a Clear button on each
// (DELETE /api/chargers/{id}/display-messages/{message}). Uses dashboard.js's `api`,
// `toast` and `esc`.
"use strict";

(function () {
  const body = document.querySelector("#messages tbody");
  const empty = document.querySelector("#no-messages");
  const form = document.querySelector("#message-form");
  const list = document.querySelector("#list-messages");
  if (!body || !form) return;

  function charger() {
    return form.elements.charger.value.trim();
  }

  async function refresh() {
    const c = charger();
    if (!c) return;
    try {
      const rows = await api("GET", `/api/chargers/${encodeURIComponent(c)}/display-messages`);
      body.innerHTML = rows.map((m) =>
        `<tr><td>${esc(m.charger)}</td><td>${esc(m.id)}</td><td>${esc(m.priority)}</td>` +
        `<td>${esc(m.content)}</td><td>${m.endsAt ? esc(new Date(m.endsAt).toLocaleString()) : ""}</td>` +
        `<td>${esc(m.status)}</td>` +
        `<td><button class="operator-only" data-clear="${esc(m.id)}">Clear</button></td></tr>`
      ).join("");
      empty.hidden = rows.length > 0;
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
  }

  body.addEventListener("click", async (ev) => {
    const id = ev.target && ev.target.dataset ? ev.target.dataset.clear : undefined;
    if (!id) return;
    const c = charger();
    try {
      const a = await api("DELETE", `/api/chargers/${encodeURIComponent(c)}/display-messages/${encodeURIComponent(id)}`);
      toast(`${c}: message ${id} ${a.status}`, a.status !== "Accepted");
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
    refresh();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const c = charger();
    const minutes = form.elements.minutes.value.trim();
    const message = {
      id: Number(form.elements.id.value),
      priority: form.elements.priority.value,
      content: form.elements.content.value,
    };
    if (minutes !== "") message.endsAt = new Date(Date.now() + Number(minutes) * 60000).toISOString();
    try {
      const m = await api("POST", `/api/chargers/${encodeURIComponent(c)}/display-messages`, message);
      toast(`${c}: message ${m.id} ${m.status}`, m.status !== "Accepted");
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
    refresh();
  });

  list.addEventListener("click", refresh);
})();
