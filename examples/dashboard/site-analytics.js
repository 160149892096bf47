// The dashboard's per-site analytics and health alerts: energy per day per site (stacked
// inline SVG bars, GET /api/analytics/sites), a site's power over time against its limit
// (GET /api/analytics/sites/{id}/power), heartbeat gaps and reconnect storms per charger
// (GET /api/analytics/connectivity), connector specs and site locations for the driver app
// (PUT /api/chargers/{id}/connectors/{evse}/spec, PUT /api/sites/{id}/location), the alert webhook (GET/PUT/DELETE
// /api/health-alerts/webhook) and its delivery log (GET /api/health-alerts/deliveries).
// Refreshed every 30 s. Uses dashboard.js's `api`, `esc` and `toast`.
"use strict";

(function () {
  const energy = document.querySelector("#site-energy-chart");
  const power = document.querySelector("#site-power-chart");
  const pick = document.querySelector("#power-site");
  const conn = document.querySelector("#connectivity tbody");
  const deliveries = document.querySelector("#alert-deliveries tbody");
  const hook = document.querySelector("#alert-hook-form");
  if (!energy || !power || !conn) return;
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2e7d5b", "#2f6fd6", "#d98e04", "#9c2a2a", "#6b4fb8", "#1b8a9a"];
  const W = 600, H = 180, PAD = 24;

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }

  function drawEnergy(sites) {
    clear(energy);
    if (!sites.length) return;
    const n = sites[0].days.length;
    const totals = Array.from({ length: n }, (_, i) => sites.reduce((s, x) => s + Number(x.days[i].energyKwh), 0));
    const max = Math.max(1, ...totals);
    const w = (W - PAD) / n;
    for (let i = 0; i < n; i++) {
      let y = H - PAD;
      sites.forEach((s, k) => {
        const d = s.days[i];
        const h = (Number(d.energyKwh) / max) * (H - 2 * PAD);
        if (h <= 0) return;
        y -= h;
        const bar = el("rect", { x: PAD + i * w + 2, y, width: Math.max(1, w - 4), height: h, fill: COLORS[k % COLORS.length], "data-site": s.siteId });
        bar.appendChild(el("title", {}, `${s.name} ${d.day}: ${Number(d.energyKwh).toFixed(1)} kWh, ${d.sessions} sessions`));
        energy.appendChild(bar);
      });
      if (i % Math.ceil(n / 7) === 0) energy.appendChild(el("text", { x: PAD + i * w, y: H - 6, class: "axis" }, sites[0].days[i].day.slice(5)));
    }
    energy.appendChild(el("text", { x: 2, y: 14, class: "axis" }, `${max.toFixed(1)} kWh`));
    sites.forEach((s, k) => energy.appendChild(el("text", { x: W - 150, y: 14 + 12 * k, class: "axis", fill: COLORS[k % COLORS.length] }, "■ " + s.name)));
  }

  function drawPower(p) {
    clear(power);
    const b = p.buckets;
    if (!b.length) return;
    const top = Math.max(1, Number(p.limitW), ...b.map((x) => Number(x.powerW))) * 1.1;
    const x = (i) => PAD + (W - 2 * PAD) * i / Math.max(1, b.length - 1);
    const y = (v) => H - PAD - (H - 2 * PAD) * Number(v) / top;
    power.appendChild(el("line", { x1: PAD, x2: W - PAD, y1: y(p.limitW), y2: y(p.limitW), class: "limit" }));
    power.appendChild(el("polyline", { points: b.map((q, i) => x(i).toFixed(1) + "," + y(q.powerW).toFixed(1)).join(" "), class: "power" }));
    b.forEach((q, i) => {
      if (!q.overLimit) return;
      const dot = el("circle", { cx: x(i), cy: y(q.powerW), r: 3, class: "over" });
      dot.appendChild(el("title", {}, `${q.at}: ${(Number(q.powerW) / 1000).toFixed(1)} kW over the limit`));
      power.appendChild(dot);
    });
    power.appendChild(el("text", { x: 2, y: 14, class: "axis" }, `peak ${(Number(p.peakW) / 1000).toFixed(1)} kW · limit ${(Number(p.limitW) / 1000).toFixed(1)} kW · ${p.overLimit} over`));
  }

  const mins = (s) => s >= 3600 ? (s / 3600).toFixed(1) + " h" : Math.round(s / 60) + " min";

  async function refresh() {
    try {
      const sites = await api("GET", "/api/analytics/sites?days=14");
      drawEnergy(sites);
      const keep = pick.value;
      pick.innerHTML = sites.map((s) => `<option value="${s.siteId}">${esc(s.name)}</option>`).join("");
      if (keep && sites.some((s) => String(s.siteId) === keep)) pick.value = keep;
      const where = document.querySelector("#location-form select[name='site']");
      if (where && document.activeElement !== where) {
        const k = where.value;
        where.innerHTML = pick.innerHTML;
        if (k) where.value = k;
      }
      if (pick.value) drawPower(await api("GET", `/api/analytics/sites/${pick.value}/power?hours=24&bucketMinutes=15`));
      const c = await api("GET", "/api/analytics/connectivity?hours=24&limit=50");
      conn.innerHTML = c.map((r) =>
        `<tr data-connectivity="${esc(r.charger)}"><td>${esc(r.charger)}</td><td>${r.gaps}</td><td>${mins(r.longestGapSecs)}</td>` +
        `<td>${mins(r.offlineSecs)}</td><td>${r.reconnects}</td><td>${r.stormCount ? `<span class="pill bad">${r.stormCount}</span>` : "0"}</td>` +
        `<td>${r.awayNow ? '<span class="pill bad">away</span>' : '<span class="pill ok">back</span>'}</td></tr>`).join("") ||
        '<tr><td colspan="7" class="empty">No gaps or storms in the last 24 hours.</td></tr>';
      const h = await api("GET", "/api/health-alerts/webhook");
      if (hook && document.activeElement !== hook.url) hook.url.value = h.url || "";
      const d = await api("GET", "/api/health-alerts/deliveries?limit=20");
      deliveries.innerHTML = d.map((r) =>
        `<tr data-delivery="${r.id}"><td>${esc(r.createdAt)}</td><td>${esc(r.charger)}</td><td>${esc(r.event)}</td>` +
        `<td><span class="pill ${r.status === "delivered" ? "ok" : r.status === "failed" ? "bad" : "warn"}">${esc(r.status)}</span></td>` +
        `<td>${r.attempts}</td><td>${esc(r.lastError || "")}</td></tr>`).join("");
    } catch (e) {
      toast("site analytics: " + e.message, true);
    }
  }

  pick.addEventListener("change", refresh);
  const specForm = document.querySelector("#spec-form");
  if (specForm) {
    specForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = specForm;
      const body = {};
      if (f.connector.value) body.connector = Number(f.connector.value);
      if (f.kw.value) body.maxPowerKw = f.kw.value;
      if (f.type.value) body.connectorType = f.type.value;
      if (f.phases.value) body.phases = Number(f.phases.value);
      try {
        await api("PUT", `/api/chargers/${encodeURIComponent(f.charger.value.trim())}/connectors/${f.evse.value}/spec`, body);
        toast("connector specs set");
      } catch (e) { toast(e.message, true); }
    });
  }
  const locForm = document.querySelector("#location-form");
  if (locForm) {
    locForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = locForm;
      try {
        await api("PUT", `/api/sites/${f.site.value}/location`, { lat: f.lat.value.trim(), lon: f.lon.value.trim(), address: f.address.value.trim() || null });
        toast("site location set");
      } catch (e) { toast(e.message, true); }
    });
  }
  if (hook) {
    hook.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("PUT", "/api/health-alerts/webhook", { url: hook.url.value.trim(), secret: hook.secret.value });
        hook.secret.value = "";
        toast("alert webhook saved");
        refresh();
      } catch (e) { toast(e.message, true); }
    });
    document.querySelector("#alert-hook-remove").addEventListener("click", async () => {
      try { await api("DELETE", "/api/health-alerts/webhook"); toast("alert webhook removed"); refresh(); } catch (e) { toast(e.message, true); }
    });
  }
  refresh();
  setInterval(refresh, 30000);
})();
