// The dashboard's analytics and charger-health panel: energy and sessions per day as an
// inline SVG bar chart (GET /api/analytics/daily), and the chargers' health, worst first,
// with aggregated counts, search and paging (GET /api/analytics/health): never a table of
// every charger, so it stays usable with 10,000 of them. Refreshed every 30 s. Uses
// dashboard.js's `api` and `esc`.
"use strict";

(function () {
  const svg = document.querySelector("#energy-chart");
  const body = document.querySelector("#health tbody");
  const counts = document.querySelector("#health-counts");
  const search = document.querySelector("#health-search");
  const prev = document.querySelector("#health-prev");
  const next = document.querySelector("#health-next");
  if (!svg || !body) return;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 600, H = 180, PAD = 24, PAGE = 20;
  let offset = 0;

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawDays(days) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const max = Math.max(1, ...days.map((d) => Number(d.energyKwh)));
    const w = (W - PAD) / days.length;
    days.forEach((d, i) => {
      const h = (Number(d.energyKwh) / max) * (H - 2 * PAD);
      const bar = el("rect", { x: PAD + i * w + 2, y: H - PAD - h, width: Math.max(1, w - 4), height: h, class: "bar" });
      bar.appendChild(el("title", {}, `${d.day}: ${Number(d.energyKwh).toFixed(1)} kWh, ${d.sessions} sessions`));
      svg.appendChild(bar);
      if (i % Math.ceil(days.length / 7) === 0) {
        svg.appendChild(el("text", { x: PAD + i * w, y: H - 6, class: "axis" }, d.day.slice(5)));
      }
    });
    svg.appendChild(el("text", { x: 2, y: 14, class: "axis" }, `${max.toFixed(1)} kWh`));
  }

  async function refresh() {
    try {
      drawDays(await api("GET", "/api/analytics/daily?days=14"));
      const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
      if (search.value.trim()) q.set("search", search.value.trim());
      const h = await api("GET", "/api/analytics/health?" + q);
      counts.textContent = `${h.total} chargers · ${h.online} online · ${h.down} down · ${h.degrading} degrading`;
      body.innerHTML = h.chargers.map((c) =>
        `<tr data-health="${esc(c.charger)}"><td>${esc(c.charger)}</td>` +
        `<td><span class="pill ${c.flag === "ok" ? "ok" : "bad"}">${esc(c.flag)}</span></td>` +
        `<td>${c.faults} <small>(${c.faultsBefore})</small></td><td>${c.reconnects} <small>(${c.reconnectsBefore})</small></td>` +
        `<td>${(c.utilization * 100).toFixed(0)} %</td><td>${esc(c.errorCodes.join(", "))}</td></tr>`).join("");
      prev.disabled = offset === 0;
      next.disabled = offset + PAGE >= h.matching;
    } catch (e) {
      counts.textContent = "analytics unavailable: " + e.message;
    }
  }

  search.addEventListener("input", () => { offset = 0; refresh(); });
  prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refresh(); });
  next.addEventListener("click", () => { offset += PAGE; refresh(); });
  refresh();
  setInterval(refresh, 30000);
})();
