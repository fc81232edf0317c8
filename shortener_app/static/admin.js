// The admin page: the link's JSON from this same address, shown readably, and its deactivate button.
// The page itself holds no data, so it can be a static file; the secret stays in the address only.
"use strict";
const api = { headers: { Accept: "application/json" } };
const error = document.getElementById("error");
const button = document.getElementById("deactivate");

function show(link) {
  const short = document.getElementById("short-link");
  short.href = link.url;
  short.textContent = link.url;
  document.getElementById("target").textContent = link.target_url;
  document.getElementById("clicks").textContent = String(link.clicks);
  document.getElementById("state").textContent = link.is_active ? "active" : "deactivated";
  document.getElementById("created").textContent = new Date(link.created_at).toLocaleString();
  document.getElementById("expires").textContent = link.expires_at ? new Date(link.expires_at).toLocaleString() : "never";
  document.getElementById("link").hidden = false;
  button.hidden = !link.is_active;
}

async function call(method) {
  error.hidden = true;
  try {
    const response = await fetch(location.pathname, { ...api, method });
    const data = await response.json();
    if (!response.ok) throw new Error(String(data.detail ?? "something went wrong"));
    show(data);
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
}

button.addEventListener("click", () => call("DELETE"));
call("GET");
