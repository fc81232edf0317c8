// The demo page's only script: a file, not inline, so a CSP of script-src 'self' allows it.
"use strict";
const form = document.getElementById("shorten");
const error = document.getElementById("error");
const result = document.getElementById("result");
function show(link, href) { link.href = href; link.textContent = href; }
function message(detail) {
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return String(detail ?? "something went wrong");
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  result.hidden = true;
  const body = { target_url: form.target_url.value };
  if (form.key.value) body.key = form.key.value;
  // datetime-local is the browser's local time without an offset; the API wants one: send UTC.
  if (form.expires_at.value) body.expires_at = new Date(form.expires_at.value).toISOString();
  try {
    const response = await fetch("/url", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(message(data.detail));
    show(document.getElementById("short-link"), data.url);
    show(document.getElementById("admin-link"), data.admin_url);
    document.getElementById("expires-at").textContent = data.expires_at ? new Date(data.expires_at).toLocaleString() : "never";
    result.hidden = false;
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
});

// Which process answered, and what it runs as: read from the process, so scaling out shows the spread.
fetch("/about").then((response) => response.json()).then((about) => {
  document.getElementById("served-by").textContent = about.served_by;
  document.getElementById("user-id").textContent = String(about.user_id);
  document.getElementById("root").textContent = about.root_read_only ? "read-only" : "writable";
  document.getElementById("python").textContent = about.python;
  if (about.image_version) {
    document.getElementById("image-version").textContent = about.image_version;
    document.getElementById("image").hidden = false;
  }
  document.getElementById("about").hidden = false;
}).catch(() => {});
