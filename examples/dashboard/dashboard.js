// The ocpp-rs central system dashboard: plain JavaScript, no build step. It reads the HTTP API
// and refreshes on every event of the live feed (server-sent events at /api/events). The page
// is served only to a signed-in user (the session cookie); every request that changes
// something carries the session's CSRF token (X-CSRF-Token). Controls the role cannot use are
// hidden (viewer: no Start / Stop); the server refuses them anyway.
"use strict";

const $ = (sel) => document.querySelector(sel);
// The charger table shows one page (server-side search and paging: a network of 10,000
// chargers is never one table); the header's counts come from /api/chargers/summary.
const PAGE = 50;
const state = {
  chargers: [], live: [], history: [], refreshTimer: null, me: null,
  page: { offset: 0, total: 0, search: "", status: "" },
};

function text(v) { return v === null || v === undefined ? "" : String(v); }
function esc(v) {
  return text(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function time(t) { return t ? new Date(t).toLocaleTimeString() : ""; }
function kwh(wh) { return wh === null || wh === undefined ? "" : (Number(wh) / 1000).toFixed(3) + " kWh"; }
function kw(w) { return w === null || w === undefined ? "" : (Number(w) / 1000).toFixed(1) + " kW"; }
function money(v, cur) { return v === null || v === undefined ? "" : Number(v).toFixed(2) + " " + esc(cur); }

function statusClass(s) {
  switch (s) {
    case "Available": return "ok";
    case "Charging": case "Occupied": case "Preparing": case "SuspendedEV": case "SuspendedEVSE": case "Finishing": return "busy";
    case "Reserved": case "Unavailable": return "warn";
    case "Faulted": return "bad";
    default: return "";
  }
}

function toast(message, isError) {
  const t = $("#toast");
  t.textContent = message;
  t.className = "show" + (isError ? " error" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 4000);
}

async function api(method, path, body) {
  const headers = body ? { "content-type": "application/json" } : {};
  if (method !== "GET" && state.me && state.me.csrfToken) headers["x-csrf-token"] = state.me.csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401) {
    // The session ended (idle, too old, signed out elsewhere): back to the login page.
    location.reload();
    throw new Error("signed out");
  }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : res.status + " " + res.statusText;
    throw new Error(msg);
  }
  return data;
}

function renderChargers() {
  const body = $("#chargers tbody");
  const liveByPlace = new Map(state.live.map((s) => [s.charger + "/" + s.evse, s]));
  body.innerHTML = state.chargers.map((c) => {
    const connectors = c.connectors.filter((k) => k.evse > 0 && (k.connector === null || k.connector === 1 || c.version === "1.6"));
    const conns = connectors.map((k) => {
      const session = liveByPlace.get(c.identity + "/" + k.evse);
      const action = session
        ? `<button class="stop" data-action="stop" data-charger="${esc(c.identity)}" data-session="${session.id}" ${c.connected ? "" : "disabled"}>Stop</button>`
        : `<button data-action="start" data-charger="${esc(c.identity)}" data-evse="${k.evse}" ${c.connected ? "" : "disabled"}>Start</button>`;
      return `<span class="connector" data-connector="${esc(c.identity)}/${k.evse}"><b>${k.evse}</b>` +
        `<span class="pill status ${statusClass(k.status)}">${esc(k.status)}</span>${action}</span>`;
    }).join("");
    return `<tr data-charger="${esc(c.identity)}">` +
      `<td><b>${esc(c.identity)}</b> <a class="qr" href="/api/chargers/${encodeURIComponent(c.identity)}/qr" target="_blank" title="Printable QR codes of its connectors for the driver app">QR</a></td><td>${esc(c.version)}</td>` +
      `<td><span class="pill link ${c.connected ? "ok" : "bad"}">${c.connected ? "online" : "offline"}</span>` +
      // On a cluster: the node holding the charger's connection.
      `${c.connected && c.node && c.node !== "local" ? ` <small title="cluster node">${esc(c.node)}</small>` : ""}</td>` +
      `<td>${esc(c.bootState)}</td><td>${esc(c.vendor)} ${esc(c.model)}</td>` +
      `<td>${time(c.lastSeen)}</td><td>${conns}</td></tr>`;
  }).join("");
  const filtered = state.page.search || state.page.status;
  $("#no-chargers").style.display = state.chargers.length || filtered ? "none" : "";
  const { offset, total } = state.page;
  $("#chargers-page").textContent = total
    ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`
    : (filtered ? "no charger matches" : "");
  $("#chargers-prev").disabled = offset === 0;
  $("#chargers-next").disabled = offset + PAGE >= total;
}

// One page of chargers: the views and the number that matched (X-Total-Count).
async function chargersPage() {
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(state.page.offset) });
  if (state.page.search) q.set("search", state.page.search);
  if (state.page.status) q.set("status", state.page.status);
  const res = await fetch("/api/chargers?" + q);
  if (res.status === 401) { location.reload(); throw new Error("signed out"); }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && data.message) || res.statusText);
  return { chargers: data, total: Number(res.headers.get("x-total-count") || data.length) };
}

// A session's signed meter values (Eichrecht): count per verification status, and the
// export for a transparency tool (S.A.F.E. XML).
function signedCell(s) {
  const counts = s.signedValues || {};
  const parts = Object.keys(counts).sort().map((k) =>
    `<span class="signed-${esc(k.toLowerCase())}" title="${esc(k)}">${counts[k]} ${esc(k)}</span>`);
  if (!parts.length) return "";
  return parts.join(" ") +
    ` <a href="/api/sessions/${s.id}/signed-values/export" download>XML</a>`;
}

function renderSessions() {
  $("#live tbody").innerHTML = state.live.map((s) =>
    `<tr data-session="${s.id}"><td>${s.id}</td><td>${esc(s.charger)}</td><td>${s.evse}</td><td>${esc(s.idTag)}</td>` +
    `<td>${time(s.startedAt)}</td><td class="num energy">${kwh(s.energyWh)}</td><td class="num power">${kw(s.powerW)}</td>` +
    `<td class="num">${money(s.cost, s.currency)}</td>` +
    `<td><button class="stop" data-action="stop" data-charger="${esc(s.charger)}" data-session="${s.id}">Stop</button></td></tr>`
  ).join("");
  $("#no-live").style.display = state.live.length ? "none" : "";
  $("#history tbody").innerHTML = state.history.map((s) =>
    `<tr data-session="${s.id}"><td>${s.id}</td><td>${esc(s.charger)}</td><td>${s.evse}</td><td>${esc(s.idTag)}</td>` +
    `<td>${time(s.startedAt)}</td><td>${time(s.stoppedAt)}</td><td class="num energy">${kwh(s.energyWh)}</td>` +
    `<td class="num cost">${money(s.cost, s.currency)}</td><td>${esc(s.stopReason)}</td>` +
    `<td class="signed">${signedCell(s)}</td></tr>`
  ).join("");
  $("#no-history").style.display = state.history.length ? "none" : "";
  $("#count-charging").textContent = state.charging ?? state.live.length;
  const total = state.live.concat(state.history).reduce((a, s) => a + Number(s.energyWh || 0), 0);
  $("#count-energy").textContent = (total / 1000).toFixed(2);
}

async function refresh() {
  try {
    const [page, summary, live, history] = await Promise.all([
      chargersPage(),
      api("GET", "/api/chargers/summary"),
      api("GET", "/api/sessions?status=active&limit=200"),
      api("GET", "/api/sessions?status=completed&limit=50"),
    ]);
    state.chargers = page.chargers;
    state.page.total = page.total;
    if (state.page.offset >= page.total && state.page.offset > 0) {
      state.page.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      scheduleRefresh();
    }
    state.live = live;
    state.history = history;
    state.charging = summary.charging;
    $("#count-total").textContent = summary.total;
    $("#count-connected").textContent = summary.online;
    $("#count-faulted").textContent = summary.faultedConnectors;
    renderChargers();
    renderSessions();
  } catch (e) {
    toast("Refresh failed: " + e.message, true);
  }
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => { state.refreshTimer = null; refresh(); }, 500);
}

const seenEvents = new Set();

function addEvent(ev) {
  if (ev.kind === "heartbeat" || ev.kind === "meter_values" || ev.kind === "transaction_updated") return;
  if (ev.id) {
    if (seenEvents.has(ev.id)) return;
    seenEvents.add(ev.id);
  }
  const li = document.createElement("li");
  const d = ev.detail || {};
  const what = d.status || d.action || d.transactionId || d.reason || d.version || "";
  li.innerHTML = `${time(ev.at)} <b>${esc(ev.charger)}</b> ${esc(ev.kind)} ${esc(what)}`;
  const list = $("#events");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 60) list.removeChild(list.lastChild);
}

function connectFeed() {
  const source = new EventSource("/api/events");
  const kinds = ["connected", "booted", "heartbeat", "status", "authorized", "transaction_started",
    "transaction_updated", "transaction_ended", "meter_values", "refused", "disconnected", "call",
    "duplicate", "sequence_gap", "send", "resync"];
  source.onopen = () => { $("#feed-state").className = "dot on"; $("#feed-label").textContent = "live"; refresh(); };
  source.onerror = () => { $("#feed-state").className = "dot off"; $("#feed-label").textContent = "reconnecting…"; };
  for (const kind of kinds) {
    source.addEventListener(kind, (msg) => {
      try { addEvent(JSON.parse(msg.data)); } catch (_) { /* a resync carries no event */ }
      if (kind !== "heartbeat") scheduleRefresh();
    });
  }
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-action]");
  if (!b) return;
  b.disabled = true;
  const charger = b.dataset.charger;
  try {
    let answer;
    if (b.dataset.action === "start") {
      const idTag = $("#id-tag").value.trim();
      answer = await api("POST", `/api/chargers/${encodeURIComponent(charger)}/start`, { evse: Number(b.dataset.evse), idTag });
    } else {
      answer = await api("POST", `/api/chargers/${encodeURIComponent(charger)}/stop`, { sessionId: Number(b.dataset.session) });
    }
    toast(`${charger}: ${answer.action} ${answer.status || "answered"}`, answer.status && answer.status !== "Accepted");
  } catch (err) {
    toast(`${charger}: ${err.message}`, true);
  } finally {
    b.disabled = false;
    scheduleRefresh();
  }
});

async function loadLog() {
  try {
    const log = await api("GET", "/api/log?limit=40");
    for (const ev of log.reverse()) addEvent(ev);
  } catch (e) {
    toast("Event log: " + e.message, true);
  }
}

function canOperate() { return state.me && (state.me.role === "operator" || state.me.role === "admin"); }

async function loadMe() {
  state.me = await api("GET", "/api/me");
  $("#user-name").textContent = state.me.username;
  $("#user-role").textContent = state.me.role;
  document.body.classList.toggle("viewer", !canOperate());
}

// Search, filter and paging of the charger table (each asks the server for one page).
let searchTimer = null;
$("#charger-search").addEventListener("input", (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.page.search = e.target.value.trim();
    state.page.offset = 0;
    refresh();
  }, 250);
});
$("#charger-status").addEventListener("change", (e) => {
  state.page.status = e.target.value;
  state.page.offset = 0;
  refresh();
});
$("#chargers-prev").addEventListener("click", () => {
  state.page.offset = Math.max(0, state.page.offset - PAGE);
  refresh();
});
$("#chargers-next").addEventListener("click", () => {
  if (state.page.offset + PAGE < state.page.total) state.page.offset += PAGE;
  refresh();
});

$("#logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (_) { /* reloads into the login page anyway */ }
  location.reload();
});

$("#ocpp-url").textContent = `ws://${location.hostname}:9000/ocpp/<identity>`;
loadMe().then(() => {
  loadLog();
  refresh();
  connectFeed();
  setInterval(refresh, 15000);
}).catch((e) => toast("Who am I: " + e.message, true));
