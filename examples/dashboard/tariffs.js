// The dashboard's tariff panel (OCPP 2.1): store a tariff in the catalog (POST /api/tariffs),
// list the catalog (GET /api/tariffs), make one a charger's default (POST
// /api/chargers/{id}/default-tariff), show a charger's tariffs (GET
// /api/chargers/{id}/tariffs) and clear them (DELETE /api/chargers/{id}/tariffs). Uses
// dashboard.js's `api`, `toast` and `esc`.
"use strict";

(function () {
  const body = document.querySelector("#tariffs tbody");
  const empty = document.querySelector("#no-tariffs");
  const form = document.querySelector("#tariff-form");
  const assign = document.querySelector("#tariff-assign");
  const out = document.querySelector("#tariff-answer");
  if (!body || !form || !assign) return;

  function prices(t) {
    const parts = [];
    for (const [k, unit] of [["energy", "/kWh"], ["chargingTime", "/min"], ["idleTime", "/min idle"], ["fixedFee", " fixed"]]) {
      const c = t[k];
      if (!c || !c.prices) continue;
      const first = c.prices[0];
      const p = first.priceKwh ?? first.priceMinute ?? first.priceFixed;
      parts.push(`${p}${unit}${c.prices.length > 1 ? ` (+${c.prices.length - 1})` : ""}`);
    }
    return parts.join(", ");
  }

  async function refresh() {
    try {
      const rows = await api("GET", "/api/tariffs");
      body.innerHTML = rows.map((t) =>
        `<tr><td>${esc(t.tariffId)}</td><td>${esc(t.currency)}</td><td>${esc(prices(t.tariff))}</td>` +
        `<td>${esc(new Date(t.createdAt).toLocaleString())}</td></tr>`
      ).join("");
      empty.hidden = rows.length > 0;
    } catch (e) {
      toast(`tariffs: ${e.message}`, true);
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let tariff;
    try {
      tariff = JSON.parse(form.elements.tariff.value);
    } catch (e) {
      toast(`not JSON: ${e.message}`, true);
      return;
    }
    try {
      const t = await api("POST", "/api/tariffs", tariff);
      toast(`tariff ${t.tariffId} stored`);
    } catch (e) {
      toast(e.message, true);
    }
    refresh();
  });

  function charger() {
    return encodeURIComponent(assign.elements.charger.value.trim());
  }

  assign.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const a = await api("POST", `/api/chargers/${charger()}/default-tariff`, {
        tariffId: assign.elements.tariff.value.trim(),
        evseId: Number(assign.elements.evse.value || 0),
      });
      toast(`SetDefaultTariff: ${a.status}`, a.status !== "Accepted");
      out.textContent = JSON.stringify(a.answer, null, 2);
    } catch (e) {
      toast(e.message, true);
    }
  });

  document.querySelector("#tariff-charger").addEventListener("click", async () => {
    try {
      const a = await api("GET", `/api/chargers/${charger()}/tariffs`);
      out.textContent = JSON.stringify(a, null, 2);
    } catch (e) {
      toast(e.message, true);
    }
  });

  document.querySelector("#tariff-clear").addEventListener("click", async () => {
    const id = assign.elements.tariff.value.trim();
    const q = id ? `?tariffId=${encodeURIComponent(id)}` : "";
    try {
      const a = await api("DELETE", `/api/chargers/${charger()}/tariffs${q}`);
      toast(`ClearTariffs: ${a.status}`, a.status !== "Accepted");
      out.textContent = JSON.stringify(a.answer, null, 2);
    } catch (e) {
      toast(e.message, true);
    }
  });

  refresh();
})();
