// Sign-in: fetch a pre-login CSRF token, then post the credentials with it.
const form = document.getElementById("login");
const error = document.getElementById("login-error");

async function token() {
  const r = await fetch("/api/login-token", { credentials: "same-origin" });
  return (await r.json()).csrf;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.textContent = "";
  const body = {
    name: document.getElementById("name").value,
    password: document.getElementById("password").value,
  };
  const r = await fetch("/api/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": await token() },
    body: JSON.stringify(body),
  });
  if (r.ok) {
    window.location.assign("/");
  } else {
    const msg = await r.json().catch(() => ({}));
    error.textContent = msg.error || `sign-in failed (${r.status})`;
  }
});
