// The dashboard's device-model panel: the variables a charger reported
// (GET /api/chargers/{id}/variables, filtered by a search box), a button that asks for a
// report (POST /api/chargers/{id}/reports), the diff between the desired and the reported
// configuration (GET /api/chargers/{id}/config-diff) with a button that applies it
// (POST /api/chargers/{id}/config-diff/apply), and the monitors' alerts (GET /api/alerts).
// Uses dashboard.js's `api`, `toast` and `esc`; the alerts refresh every 10 seconds.
"use strict";

(function () {
  const form = document.querySelector("#device-model-form");
  const vars = document.querySelector("#device-variables tbody");
  const diff = document.querySelector("#config-diff tbody");
  const alerts = document.querySelector("#alerts tbody");
  if (!form || !vars || !diff || !alerts) return;

  const charger = () => form.elements.charger.value.trim();
  const search = () => form.elements.search.value.trim();
  const path = (c) => `/api/chargers/${encodeURIComponent(c)}`;

  async function showVariables() {
    const c = charger();
    if (!c) return;
    try {
      const q = search() ? `?search=${encodeURIComponent(search())}` : "";
      const rows = await api("GET", `${path(c)}/variables${q}`);
      vars.innerHTML = rows.slice(0, 500).map((r) => {
        const where = [r.componentInstance, r.evse != null ? `EVSE ${r.evse}` : "", r.connector != null ? `connector ${r.connector}` : ""]
          .filter(Boolean).join(", ");
        const ch = r.characteristics || {};
        const mut = (r.attributes.find((a) => a.type === "Actual") || {}).mutability || "";
        return `<tr><td>${esc(r.component)}${where ? ` (${esc(where)})` : ""}</td>` +
          `<td>${esc(r.variable)}${r.variableInstance ? `[${esc(r.variableInstance)}]` : ""}</td>` +
          `<td>${esc(r.value == null ? "" : r.value)}</td><td>${esc(mut)}</td>` +
          `<td>${esc(ch.dataType || "")}${ch.unit ? ` (${esc(ch.unit)})` : ""}</td></tr>`;
      }).join("");
      const d = await api("GET", `${path(c)}/config-diff`);
      diff.innerHTML = d.map((r) =>
        `<tr><td>${esc(r.component ? `${r.component}.${r.variable}` : r.variable)}</td><td>${esc(r.desired)}</td>` +
        `<td>${esc(r.reported == null ? "" : r.reported)}</td><td class="${r.state === "same" ? "" : "warn"}">${esc(r.state)}</td></tr>`
      ).join("");
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
  }

  async function showAlerts() {
    try {
      const rows = await api("GET", "/api/alerts");
      alerts.innerHTML = rows.slice(0, 100).map((a) =>
        `<tr><td>${esc(a.charger)}</td><td>${esc(a.component)}</td><td>${esc(a.severity == null ? "?" : a.severity)}</td>` +
        `<td>${esc(a.value)}</td><td>${esc(new Date(a.raisedAt).toLocaleString())}</td>` +
        `<td class="${a.clearedAt ? "" : "warn"}">${a.clearedAt ? "cleared" : "open"}</td></tr>`
      ).join("");
    } catch (_) { /* the next refresh tries again */ }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    showVariables();
  });
  document.querySelector("#request-report").addEventListener("click", async () => {
    const c = charger();
    if (!c) return;
    try {
      const r = await api("POST", `${path(c)}/reports`, { base: "FullInventory" });
      toast(`Report ${r.requestId}: ${r.status}`, !["Receiving", "Complete"].includes(r.status));
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
    setTimeout(showVariables, 1000);
  });
  document.querySelector("#apply-config").addEventListener("click", async () => {
    const c = charger();
    if (!c) return;
    try {
      const rows = await api("POST", `${path(c)}/config-diff/apply`);
      const bad = rows.filter((r) => !["Accepted", "RebootRequired"].includes(r.status));
      toast(`${rows.length} value(s) sent, ${bad.length} refused`, bad.length > 0);
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
    showVariables();
  });
  showAlerts();
  setInterval(showAlerts, 10000);
})();
