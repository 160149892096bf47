// The dashboard's driver accounts and fleets: accounts paged on the server (search,
// previous/next; GET /api/accounts), block and unblock (admin), an account's tokens
// (GET /api/accounts/{id}/tokens); fleets with their members (GET /api/accounts?fleet=),
// vehicles and the links to their monthly invoices (HTML and PDF). Usable with 10,000
// accounts: one page at a time. Uses dashboard.js's `api`, `esc` and `toast`.
"use strict";

(function () {
  const body = document.querySelector("#accounts tbody");
  const search = document.querySelector("#accounts-search");
  const prev = document.querySelector("#accounts-prev");
  const next = document.querySelector("#accounts-next");
  const count = document.querySelector("#accounts-count");
  const tokens = document.querySelector("#account-tokens");
  const fleets = document.querySelector("#fleets tbody");
  const members = document.querySelector("#fleet-members");
  if (!body || !fleets) return;
  const PAGE = 20;
  let offset = 0;

  function month(back) {
    const d = new Date();
    d.setUTCDate(1);
    d.setUTCMonth(d.getUTCMonth() - back);
    return d.toISOString().slice(0, 7);
  }

  async function loadAccounts() {
    const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (search.value.trim()) q.set("search", search.value.trim());
    const page = await api("GET", "/api/accounts?" + q);
    count.textContent = page.total ? `${offset + 1}–${offset + page.accounts.length} of ${page.total}` : "no account matches";
    body.innerHTML = page.accounts.map((a) =>
      `<tr data-account="${a.id}"><td>${esc(a.email)}</td><td>${esc(a.name)}</td>` +
      `<td><span class="pill ${a.status === "active" ? "ok" : "bad"}">${esc(a.status)}</span></td>` +
      `<td>${a.fleetId === null ? "" : a.fleetId}</td><td>${a.cardLast4 ? "•••• " + esc(a.cardLast4) : ""}</td>` +
      `<td><button type="button" data-tokens="${a.id}">Tokens</button> ` +
      `<button type="button" class="operator-only" data-status="${a.status === "active" ? "blocked" : "active"}" data-id="${a.id}">${a.status === "active" ? "Block" : "Unblock"}</button></td></tr>`).join("");
    prev.disabled = offset === 0;
    next.disabled = offset + PAGE >= page.total;
  }

  async function loadFleets() {
    const list = await api("GET", "/api/fleets");
    const months = [month(0), month(1), month(2)];
    fleets.innerHTML = list.map((f) =>
      `<tr data-fleet="${f.id}"><td>${esc(f.name)}</td><td>${f.members} <button type="button" data-members="${f.id}">Members</button></td>` +
      `<td>${f.vehicles.map((v) => esc(v.plate) + (v.label ? " (" + esc(v.label) + ")" : "")).join(", ")}</td>` +
      `<td>${months.map((m) => `<a data-invoice="${m}" href="/api/fleets/${f.id}/invoice?month=${m}" target="_blank">${m}</a> ` +
        `<a data-invoice-pdf="${m}" href="/api/fleets/${f.id}/invoice.pdf?month=${m}" target="_blank">PDF</a>`).join(" · ")}</td></tr>`).join("") ||
      '<tr><td colspan="4" class="empty">No fleet yet.</td></tr>';
  }

  async function refresh() {
    try { await loadAccounts(); await loadFleets(); } catch (e) { toast("accounts: " + e.message, true); }
  }

  body.addEventListener("click", async (ev) => {
    const t = ev.target;
    try {
      if (t.dataset.tokens) {
        const list = await api("GET", `/api/accounts/${t.dataset.tokens}/tokens`);
        tokens.innerHTML = list.map((k) => `<li>${esc(k.idToken)} <small>${esc(k.kind)}${k.label ? " · " + esc(k.label) : ""}</small></li>`).join("") || "<li>no token</li>";
        tokens.dataset.account = t.dataset.tokens;
      } else if (t.dataset.status) {
        await api("PUT", `/api/accounts/${t.dataset.id}/status`, { status: t.dataset.status });
        toast(t.dataset.status === "blocked" ? "account blocked" : "account unblocked");
        await loadAccounts();
      }
    } catch (e) { toast(e.message, true); }
  });
  fleets.addEventListener("click", async (ev) => {
    const id = ev.target.dataset.members;
    if (!id) return;
    try {
      const page = await api("GET", `/api/accounts?fleet=${id}&limit=100`);
      members.innerHTML = page.accounts.map((a) => `<li>${esc(a.name)} &lt;${esc(a.email)}&gt;</li>`).join("") || "<li>no member</li>";
      members.dataset.fleet = id;
    } catch (e) { toast(e.message, true); }
  });
  search.addEventListener("input", () => { offset = 0; refresh(); });
  prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refresh(); });
  next.addEventListener("click", () => { offset += PAGE; refresh(); });
  refresh();
  setInterval(refresh, 30000);
})();
