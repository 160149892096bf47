// The driver app: a mobile-first page over the same HTTP API as any client (the driver
// routes of /api/openapi.json). No build step, no CDN: the chart is inline SVG.
'use strict';

const $ = (s) => document.querySelector(s);
let csrf = '';
let me = null;
let live = null; // the running session's id
let timer = null;
let site = null; // the site the charger list is limited to: { id, name }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const opts = { method, headers: { 'x-csrf-token': csrf }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['content-type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { /* empty body */ }
  if (data && data.csrfToken) csrf = data.csrfToken;
  if (!r.ok) {
    const msg = (data && data.error && data.error.message) || r.statusText;
    const err = new Error(msg);
    err.status = r.status;
    err.code = data && data.error && data.error.code;
    throw err;
  }
  return data;
}

function show(signedIn) {
  $('#auth').hidden = signedIn;
  $('#main').hidden = !signedIn;
  $('#sign-out').hidden = !signedIn;
  $('#who').textContent = signedIn && me ? me.name : '';
}

function tab(name) {
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('on', b.dataset.tab === name);
  for (const s of ['find', 'map', 'charging', 'history', 'account']) $('#tab-' + s).hidden = s !== name;
  refresh();
}

async function signedIn(data) {
  me = data.account;
  show(true);
  renderAccount();
  // A QR code's deep link: /app#charger=ID&evse=N.
  const m = location.hash.match(/charger=([^&]+)/);
  if (m) $('#search').value = decodeURIComponent(m[1]);
  tab('find');
  if (timer) clearInterval(timer);
  timer = setInterval(refresh, 2000);
}

// ---------------------------------------------------------------- find and start

const STARTABLE = new Set(['Available', 'Preparing', 'Occupied', 'Finishing']);

function kw(w) { return w == null ? '' : (w / 1000).toLocaleString('en', { maximumFractionDigits: 1 }) + ' kW'; }

async function loadChargers() {
  const q = new URLSearchParams({ limit: '100' });
  if ($('#search').value) q.set('search', $('#search').value);
  if ($('#only-available').checked) q.set('available', 'true');
  if ($('#min-power').value) q.set('minPowerKw', $('#min-power').value);
  if ($('#connector-type').value) q.set('connectorType', $('#connector-type').value);
  if (site) q.set('site', String(site.id));
  $('#site-chip').hidden = !site;
  $('#site-name').textContent = site ? site.name : '';
  const list = await api('GET', '/api/driver/chargers?' + q);
  const ul = $('#chargers');
  ul.replaceChildren();
  if (!list.length) ul.append(el('li', { className: 'muted', text: 'No charger matches.' }));
  for (const c of list) {
    const li = el('li', { 'data-charger': c.identity },
      el('h3', { text: c.identity }),
      el('div', { className: 'muted', text: (c.siteName ? c.siteName + ' · ' : '') + (c.online ? 'online' : 'offline') + ' · ' + c.available + ' of ' + c.connectors.length + ' available' }));
    for (const k of c.connectors) {
      const b = el('button', { text: 'Start', 'data-charger': c.identity, 'data-evse': String(k.evse) });
      b.disabled = !c.online || !STARTABLE.has(k.status) || live !== null;
      b.onclick = () => start(c.identity, k.evse);
      const spec = [kw(k.maxPowerW), k.connectorType || ''].filter((x) => x).join(' · ');
      li.append(el('div', { className: 'connector' },
        el('span', { text: 'Connector ' + k.evse + ' ' },
          el('span', { className: 'badge ' + k.status, text: k.status }),
          el('small', { className: 'spec', text: spec ? ' ' + spec : '' })), b));
    }
    ul.append(li);
  }
}

// ---------------------------------------------------------------- sites and map

function showSite(s) {
  site = { id: s.id, name: s.name };
  tab('find');
}

function svgEl(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// The sites on an equirectangular projection of their own bounding box (no map tiles: the
// page works offline), green where a connector is available.
function drawMap(sites) {
  const svg = $('#map');
  svg.replaceChildren(svgEl('rect', { x: 0, y: 0, width: 300, height: 200, class: 'bg' }));
  const placed = sites.filter((s) => s.location);
  if (!placed.length) {
    const t = svgEl('text', { x: 150, y: 100, 'text-anchor': 'middle', class: 'label' });
    t.textContent = 'No site has a location yet.';
    svg.append(t);
    return;
  }
  const lat = placed.map((s) => Number(s.location.lat)), lon = placed.map((s) => Number(s.location.lon));
  const k = Math.cos(((Math.min(...lat) + Math.max(...lat)) / 2) * Math.PI / 180);
  const x0 = Math.min(...lon) * k, x1 = Math.max(...lon) * k, y0 = Math.min(...lat), y1 = Math.max(...lat);
  const scale = Math.min(260 / Math.max(x1 - x0, 1e-9), 160 / Math.max(y1 - y0, 1e-9));
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  for (const s of placed) {
    const x = 150 + (Number(s.location.lon) * k - cx) * (x1 > x0 || y1 > y0 ? scale : 0);
    const y = 100 - (Number(s.location.lat) - cy) * (x1 > x0 || y1 > y0 ? scale : 0);
    const cls = s.total === 0 ? 'none' : s.available > 0 ? 'ok' : 'busy';
    const g = svgEl('g', { class: 'marker ' + cls, 'data-site': String(s.id), tabindex: '0' });
    const title = svgEl('title', {});
    title.textContent = s.name + ': ' + s.available + ' of ' + s.total + ' available';
    g.append(title, svgEl('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 7 }));
    const t = svgEl('text', { x: (x + 10).toFixed(1), y: (y + 4).toFixed(1), class: 'label' });
    t.textContent = s.name + ' ' + s.available + '/' + s.total;
    g.append(t);
    g.onclick = () => showSite(s);
    svg.append(g);
  }
}

async function loadSites() {
  const sites = await api('GET', '/api/driver/sites');
  drawMap(sites);
  const ul = $('#sites');
  ul.replaceChildren();
  if (!sites.length) ul.append(el('li', { className: 'muted', text: 'No sites yet.' }));
  for (const s of sites) {
    const li = el('li', { 'data-site': String(s.id) },
      el('h3', { text: s.name }),
      el('div', { className: 'muted', text: (s.location && s.location.address ? s.location.address + ' · ' : '') + s.available + ' of ' + s.total + ' available' }));
    for (const t of s.types) {
      li.append(el('div', { className: 'connector', 'data-type': t.connectorType },
        el('span', { text: t.connectorType }), el('b', { text: t.available + '/' + t.total })));
    }
    li.onclick = () => showSite(s);
    ul.append(li);
  }
}

async function start(charger, evse) {
  $('#start-error').textContent = '';
  try {
    const r = await api('POST', '/api/driver/start', { charger, evse });
    if (r.answer.status !== 'Accepted') {
      $('#start-error').textContent = 'The charger said ' + r.answer.status + '.';
      return;
    }
    $('#start-error').textContent = 'Starting…';
    tab('charging');
  } catch (e) {
    $('#start-error').textContent = e.message;
  }
}

// ---------------------------------------------------------------- live session

function money(v, cur) { return Number(v).toFixed(2) + ' ' + cur; }

function fmtElapsed(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(r).padStart(2, '0');
}

function chart(points) {
  const svg = $('#chart');
  svg.replaceChildren();
  if (points.length < 1) return;
  const t0 = Date.parse(points[0].at), t1 = Math.max(Date.parse(points[points.length - 1].at), t0 + 1);
  const maxP = Math.max(1, ...points.map((p) => Number(p.powerW || 0)));
  const maxE = Math.max(1, ...points.map((p) => Number(p.energyWh || 0)));
  const line = (key, max, cls) => {
    const pts = points.filter((p) => p[key] != null)
      .map((p) => ((Date.parse(p.at) - t0) / (t1 - t0) * 300).toFixed(1) + ',' + (118 - Number(p[key]) / max * 110).toFixed(1));
    if (pts.length === 1) pts.push('300,' + pts[0].split(',')[1]);
    const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    pl.setAttribute('points', pts.join(' '));
    pl.setAttribute('class', cls);
    svg.append(pl);
  };
  line('powerW', maxP, 'p');
  line('energyWh', maxE, 'e');
}

async function loadLive() {
  if (live === null) {
    $('#live').hidden = true;
    $('#no-session').hidden = false;
    return;
  }
  const d = await api('GET', '/api/driver/sessions/' + live);
  const s = d.session;
  $('#no-session').hidden = true;
  $('#live').hidden = false;
  $('#live').dataset.session = String(s.id);
  $('#live-charger').textContent = s.charger + ' · connector ' + s.evse;
  $('#elapsed').textContent = fmtElapsed(Date.now() - Date.parse(s.startedAt));
  $('#energy').textContent = (Number(s.energyWh) / 1000).toFixed(3);
  $('#cost').textContent = money(s.cost, s.currency);
  $('#power').textContent = (Number(s.powerW || 0) / 1000).toFixed(1);
  chart(d.points);
}

async function stop() {
  if (live === null) return;
  $('#stop').disabled = true;
  try {
    await api('POST', '/api/driver/sessions/' + live + '/stop', {});
  } catch (e) {
    $('#start-error').textContent = e.message;
  }
  $('#stop').disabled = false;
  tab('history');
}

// ---------------------------------------------------------------- history

async function loadSessions() {
  const list = await api('GET', '/api/driver/sessions');
  const active = list.find((x) => x.session.status === 'active');
  live = active ? active.session.id : null;
  return list;
}

function renderHistory(list) {
  const ul = $('#history');
  ul.replaceChildren();
  if (!list.length) ul.append(el('li', { className: 'muted', text: 'No sessions yet.' }));
  for (const x of list) {
    const s = x.session;
    const when = new Date(s.startedAt).toLocaleString();
    const li = el('li', { 'data-session': String(s.id) },
      el('h3', { text: s.charger + ' · ' + when }),
      el('div', { text: (Number(s.energyWh) / 1000).toFixed(3) + ' kWh · ' + money(s.cost, s.currency) }),
      el('div', { className: 'muted payment', text: s.status === 'active' ? 'charging' : 'payment: ' + (x.payment ? x.payment.status : 'none') }));
    if (s.status !== 'active') {
      li.append(el('a', { href: '/api/driver/sessions/' + s.id + '/receipt', target: '_blank', className: 'receipt', text: 'Receipt' }));
    }
    ul.append(li);
  }
}

// ---------------------------------------------------------------- account

async function renderAccount() {
  $('#card-on-file').textContent = me.cardLast4 ? '•••• ' + me.cardLast4 : 'none';
  const tokens = await api('GET', '/api/driver/tokens');
  $('#tokens').replaceChildren(...tokens.map((t) => {
    const li = el('li', { text: t.idToken + ' (' + (t.kind === 'app' ? 'this app' : t.label || 'card') + ') ' });
    if (t.kind !== 'app') {
      const b = el('button', { text: 'Unlink' });
      b.onclick = async () => { await api('DELETE', '/api/driver/tokens/' + encodeURIComponent(t.idToken)); renderAccount(); };
      li.append(b);
    }
    return li;
  }));
}

// ---------------------------------------------------------------- wiring

async function refresh() {
  try {
    const list = await loadSessions();
    if (!$('#tab-find').hidden) await loadChargers();
    if (!$('#tab-map').hidden) await loadSites();
    if (!$('#tab-charging').hidden) await loadLive();
    if (!$('#tab-history').hidden) renderHistory(list);
  } catch (e) {
    if (e.status === 401) { show(false); if (timer) clearInterval(timer); }
  }
}

$('#signin-form').onsubmit = async (ev) => {
  ev.preventDefault();
  $('#auth-error').textContent = '';
  try {
    await signedIn(await api('POST', '/api/driver/login', { email: $('#si-email').value, password: $('#si-password').value }));
  } catch (e) { $('#auth-error').textContent = e.message; }
};
$('#signup-form').onsubmit = async (ev) => {
  ev.preventDefault();
  $('#auth-error').textContent = '';
  try {
    await signedIn(await api('POST', '/api/driver/signup', { email: $('#su-email').value, name: $('#su-name').value, password: $('#su-password').value }));
  } catch (e) { $('#auth-error').textContent = e.message; }
};
$('#sign-out').onclick = async () => { try { await api('POST', '/api/driver/logout'); } catch (_) { /* gone already */ } show(false); };
for (const b of document.querySelectorAll('nav button')) b.onclick = () => tab(b.dataset.tab);
$('#search').oninput = () => loadChargers().catch(() => {});
$('#only-available').onchange = () => loadChargers().catch(() => {});
$('#min-power').onchange = () => loadChargers().catch(() => {});
$('#connector-type').onchange = () => loadChargers().catch(() => {});
$('#clear-site').onclick = () => { site = null; loadChargers().catch(() => {}); };
$('#stop').onclick = stop;
$('#save-card').onclick = async () => {
  $('#account-error').textContent = '';
  try {
    me = await api('PUT', '/api/driver/card', { number: $('#card-number').value.replace(/\s/g, '') || null });
    $('#card-number').value = '';
    renderAccount();
  } catch (e) { $('#account-error').textContent = e.message; }
};
$('#add-token').onclick = async () => {
  $('#account-error').textContent = '';
  try {
    await api('POST', '/api/driver/tokens', { idToken: $('#new-token').value.trim() });
    $('#new-token').value = '';
    renderAccount();
  } catch (e) { $('#account-error').textContent = e.message; }
};

api('GET', '/api/driver/me').then(signedIn, () => show(false));
