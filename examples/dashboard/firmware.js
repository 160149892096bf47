// The dashboard's firmware and logs panel: the rollouts with each charger's status and the
// progress (GET /api/firmware/rollouts), a form to roll an uploaded image out to chargers
// (POST /api/firmware/rollouts; images are uploaded with POST /api/firmware/images), the log
// requests with their status and the files received (GET /api/logs, each file a link to
// GET /api/logs/files/{id}), and a form to request a log (POST /api/chargers/{id}/logs).
// Uses dashboard.js's `api`, `toast` and `esc`; refreshed every 5 seconds and after every action.
"use strict";

(function () {
  const rollouts = document.querySelector("#rollouts tbody");
  const noRollouts = document.querySelector("#no-rollouts");
  const logs = document.querySelector("#log-requests tbody");
  const noLogs = document.querySelector("#no-log-requests");
  const rolloutForm = document.querySelector("#rollout-form");
  const logForm = document.querySelector("#log-form");
  if (!rollouts || !logs || !rolloutForm || !logForm) return;

  async function refresh() {
    try {
      const images = await api("GET", "/api/firmware/images");
      const select = rolloutForm.elements.image;
      const chosen = select.value;
      select.innerHTML = images.map((i) =>
        `<option value="${esc(i.id)}">${esc(i.name)} ${esc(i.version)}${i.signed ? " (signed)" : ""}</option>`
      ).join("");
      if (chosen) select.value = chosen;
      const names = new Map(images.map((i) => [i.id, `${i.name} ${i.version}`]));
      const rows = await api("GET", "/api/firmware/rollouts");
      rollouts.innerHTML = rows.slice(0, 50).map((r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(names.get(r.imageId) || r.imageId)}</td><td>${r.signed ? "yes" : "no"}</td>` +
        `<td><progress max="${esc(r.targets.length)}" value="${esc(r.finished)}"></progress> ` +
        `${esc(r.installed)}/${esc(r.targets.length)} installed</td>` +
        `<td>${r.targets.map((t) => `${esc(t.charger)}: <span class="${t.status === "Installed" ? "" : "warn"}">${esc(t.status)}</span>` +
          (t.installedVersion ? ` (${esc(t.installedVersion)})` : "")).join("<br>")}</td></tr>`
      ).join("");
      noRollouts.hidden = rows.length > 0;
    } catch (_) { /* the next refresh tries again */ }
    try {
      const rows = await api("GET", "/api/logs");
      logs.innerHTML = rows.slice(0, 50).map((r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(r.charger)}</td><td>${esc(r.logType)}</td><td>${esc(r.status)}</td>` +
        `<td>${r.files.map((f) => `<a href="/api/logs/files/${encodeURIComponent(f.id)}">${esc(f.name)}</a> (${esc(f.size)} B)`).join("<br>")}</td></tr>`
      ).join("");
      noLogs.hidden = rows.length > 0;
    } catch (_) { /* the next refresh tries again */ }
  }

  rolloutForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chargers = rolloutForm.elements.chargers.value.split(",").map((c) => c.trim()).filter((c) => c);
    const imageId = Number(rolloutForm.elements.image.value);
    try {
      const r = await api("POST", "/api/firmware/rollouts", { imageId, chargers });
      toast(`Rollout ${r.id} started to ${r.targets.length} charger(s)`, false);
    } catch (e) {
      toast(`Rollout: ${e.message}`, true);
    }
    refresh();
  });

  logForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const charger = logForm.elements.charger.value.trim();
    try {
      const r = await api("POST", `/api/chargers/${encodeURIComponent(charger)}/logs`, { logType: logForm.elements.logType.value });
      toast(`${charger}: log request ${r.id} ${r.status}`, r.status !== "Accepted");
    } catch (e) {
      toast(`${charger}: ${e.message}`, true);
    }
    refresh();
  });

  refresh();
  setInterval(refresh, 5000);
})();
