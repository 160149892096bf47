// The dashboard's event-stream panel (OCPP 2.1): lists a charger's periodic event streams
// (GET /api/chargers/{id}/streams), opens one on a variable (POST, a monitor with
// periodicEventStream), closes one (DELETE) and charts a stream's newest samples
// (GET .../streams/{stream}/samples) as an inline SVG line, refreshed every 5 s. Uses
// dashboard.js's `api`, `toast` and `esc`.
"use strict";

(function () {
  const body = document.querySelector("#streams tbody");
  const empty = document.querySelector("#no-streams");
  const form = document.querySelector("#stream-form");
  const list = document.querySelector("#list-streams");
  const figure = document.querySelector("#stream-chart");
  if (!body || !form || !figure) return;
  const svg = figure.querySelector("svg");
  const caption = figure.querySelector("figcaption");
  const SVG = "http://www.w3.org/2000/svg";
  const W = 600, H = 200, PAD = 30;
  let shown = null; // { charger, stream }
  let timer = null;

  function charger() {
    return form.elements.charger.value.trim();
  }

  function el(name, attrs, textContent) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (textContent !== undefined) e.textContent = textContent;
    return e;
  }

  // Draws the numeric samples: a polyline scaled to the min/max, with both labelled.
  function draw(samples) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const points = samples
      .map((s) => ({ t: Date.parse(s.at), v: Number(s.value) }))
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v));
    if (points.length === 0) {
      svg.appendChild(el("text", { x: PAD, y: H / 2 }, "no numeric samples yet"));
      return;
    }
    const t0 = points[0].t, t1 = points[points.length - 1].t;
    let lo = Math.min(...points.map((p) => p.v)), hi = Math.max(...points.map((p) => p.v));
    if (hi === lo) { hi += 1; lo -= 1; }
    const x = (t) => PAD + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (W - 2 * PAD));
    const y = (v) => H - PAD - ((v - lo) / (hi - lo)) * (H - 2 * PAD);
    svg.appendChild(el("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, stroke: "#999" }));
    svg.appendChild(el("line", { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, stroke: "#999" }));
    svg.appendChild(el("text", { x: 2, y: PAD, "font-size": 10 }, String(hi)));
    svg.appendChild(el("text", { x: 2, y: H - PAD, "font-size": 10 }, String(lo)));
    svg.appendChild(el("text", { x: PAD, y: H - 8, "font-size": 10 }, new Date(t0).toLocaleTimeString()));
    svg.appendChild(el("text", { x: W - PAD - 60, y: H - 8, "font-size": 10 }, new Date(t1).toLocaleTimeString()));
    svg.appendChild(el("polyline", {
      points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "),
      fill: "none", stroke: "#2a7ae2", "stroke-width": 1.5,
    }));
  }

  async function chart() {
    if (!shown) return;
    const { charger: c, stream } = shown;
    try {
      const samples = await api("GET", `/api/chargers/${encodeURIComponent(c)}/streams/${stream}/samples?limit=300`);
      caption.textContent = `${c} stream ${stream}: ${samples.length} newest samples`;
      figure.hidden = false;
      draw(samples);
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
  }

  async function refresh() {
    const c = charger();
    if (!c) return;
    try {
      const rows = await api("GET", `/api/chargers/${encodeURIComponent(c)}/streams`);
      body.innerHTML = rows.map((s) =>
        `<tr><td>${esc(s.streamId)}</td><td>${esc(s.component)}.${esc(s.variable)}</td>` +
        `<td>${s.interval ? esc(s.interval) + " s" : ""}${s.values ? " / " + esc(s.values) : ""}</td>` +
        `<td>${esc(s.status)}</td><td>${esc(s.samples)}</td><td>${esc(s.lastValue || "")}</td>` +
        `<td><button data-chart="${esc(s.streamId)}">Chart</button>` +
        (s.status === "Closed" ? "" : ` <button class="operator-only" data-close="${esc(s.streamId)}">Close</button>`) +
        `</td></tr>`
      ).join("");
      empty.hidden = rows.length > 0;
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
  }

  body.addEventListener("click", async (ev) => {
    const d = ev.target && ev.target.dataset ? ev.target.dataset : {};
    const c = charger();
    if (d.chart !== undefined) {
      shown = { charger: c, stream: d.chart };
      if (timer) clearInterval(timer);
      timer = setInterval(chart, 5000);
      chart();
    } else if (d.close !== undefined) {
      try {
        const a = await api("DELETE", `/api/chargers/${encodeURIComponent(c)}/streams/${encodeURIComponent(d.close)}`);
        toast(`${c}: stream ${d.close} close ${a.status}`, a.status !== "Accepted");
      } catch (e) {
        toast(`${c}: ${e.message}`, true);
      }
      refresh();
    }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const c = charger();
    const f = form.elements;
    const req = { component: f.component.value.trim(), variable: f.variable.value.trim(), value: f.every.value || "1" };
    if (f.evse.value !== "") req.evse = Number(f.evse.value);
    if (f.interval.value !== "" && Number(f.interval.value) > 0) req.interval = Number(f.interval.value);
    if (f.values.value !== "" && Number(f.values.value) > 0) req.values = Number(f.values.value);
    try {
      const a = await api("POST", `/api/chargers/${encodeURIComponent(c)}/streams`, req);
      toast(`${c}: ${a.status}${a.stream ? " (stream " + a.stream.streamId + ")" : ""}`, a.status !== "Accepted");
    } catch (e) {
      toast(`${c}: ${e.message}`, true);
    }
    refresh();
  });

  list.addEventListener("click", refresh);
})();
