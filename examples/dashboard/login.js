// The sign-in form of the dashboard: plain JavaScript, no build step. POST /api/login sets
// the session cookie (HttpOnly: this script never sees it); then the page reloads into the
// dashboard.
"use strict";

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error");
  const button = document.getElementById("sign-in");
  error.textContent = "";
  button.disabled = true;
  try {
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        username: document.getElementById("username").value.trim(),
        password: document.getElementById("password").value,
      }),
    });
    if (res.ok) {
      location.reload();
      return;
    }
    const data = await res.json().catch(() => null);
    error.textContent = data && data.error ? data.error.message : res.status + " " + res.statusText;
  } catch (err) {
    error.textContent = err.message;
  } finally {
    button.disabled = false;
  }
});
