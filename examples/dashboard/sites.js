// The dashboard's sites panel: a site's measured power over time against its limit (an SVG
// line chart, GET /api/sites/{id}/power) and each session's limit next to its measured
// power (GET /api/sites/{id}/plan), refreshed every 2 seconds.
"use strict";

(function () {
  const select = document.querySelector("#site-select");
  const chart = document.querySelector("#site-chart");
  const body = document.querySelector("#site-plan tbody");
  const empty = document.querySelector("#no-sites");
  const summary = document.querySelector("#site-summary");
  if (!select || !chart || !body) return;
  const SVG = "http://www.w3.org/2000/svg";
  const esc = (v) => String(v === null || v === undefined ? "" : v)
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const kw = (w) => (w === null || w === undefined) ? "" : (Number(w) / 1000).toFixed(2) + " kW";

  function line(points, color, dashed) {
    const p = document.createElementNS(SVG, "polyline");
    p.setAttribute("points", points.map((q) => q.join(",")).join(" "));
    p.setAttribute("fill", "none");
    p.setAttribute("stroke", color);
    p.setAttribute("stroke-width", "2");
    if (dashed) p.setAttribute("stroke-dasharray", "6 4");
    chart.appendChild(p);
  }

  function draw(series) {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    if (series.length === 0) return;
    const W = 600, H = 160, pad = 4;
    const t0 = Date.parse(series[0].at), t1 = Date.parse(series[series.length - 1].at);
    const span = Math.max(1, t1 - t0);
    const top = Math.max(1, ...series.map((p) => Math.max(Number(p.measuredW), Number(p.limitW)))) * 1.1;
    const x = (p) => pad + (W - 2 * pad) * (Date.parse(p.at) - t0) / span;
    const y = (v) => H - pad - (H - 2 * pad) * Number(v) / top;
    // The limit as steps (it changes at an instant), the measured power as a line.
    const limit = [];
    series.forEach((p, i) => {
      if (i > 0) limit.push([x(p), y(series[i - 1].limitW)]);
      limit.push([x(p), y(p.limitW)]);
    });
    line(limit, "#c0392b", true);
    line(series.map((p) => [x(p), y(p.measuredW)]), "#2471a3", false);
  }

  async function sites() {
    const res = await fetch("/api/sites");
    if (!res.ok) return [];
    return res.json();
  }

  async function refresh() {
    try {
      const list = await sites();
      empty.hidden = list.length > 0;
      const chosen = select.value;
      select.innerHTML = list.map((s) => `<option value="${esc(s.id)}">${esc(s.name)}</option>`).join("");
      if (list.some((s) => String(s.id) === chosen)) select.value = chosen;
      const site = list.find((s) => String(s.id) === select.value);
      if (!site) { draw([]); body.innerHTML = ""; summary.textContent = ""; return; }
      summary.textContent = `${kw(site.measuredW)} of ${kw(site.limitW)} · ${site.sessions} sessions, ${site.queued} queued`;
      const [power, plan] = await Promise.all([
        fetch(`/api/sites/${site.id}/power`).then((r) => r.ok ? r.json() : []),
        fetch(`/api/sites/${site.id}/plan`).then((r) => r.ok ? r.json() : []),
      ]);
      draw(power);
      const unit = site.unit === "A" ? " A" : " W";
      body.innerHTML = plan.map((p) =>
        `<tr><td>${esc(p.charger)}</td><td>${esc(p.evse)}</td><td>${esc(p.transactionId)}</td>` +
        `<td>${esc(p.limit + unit)}</td><td>${esc(kw(p.measuredW))}</td>` +
        `<td title="${esc(p.reason)}">${esc(p.queued || "")}</td></tr>`).join("");
    } catch (_) { /* the next refresh tries again */ }
  }
  select.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 2000);
})();
