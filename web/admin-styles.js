// StyleFusion studio, Styles section: thumbnails, rename, download as zip, delete (or hide a shipped style).
// Runs after admin.js and uses its helpers: $, api, toast, token, loadStyles.
"use strict";

const STYLES_POLL_MS = 5000;
const styleAdmin = { signature: "", timer: null };

async function refreshStyleList() {
  clearTimeout(styleAdmin.timer);
  try {
    const resp = await fetch("/api/styles", { cache: "no-store" });
    if (resp.ok) renderStyleList(await resp.json());
  } finally {
    styleAdmin.timer = setTimeout(refreshStyleList, STYLES_POLL_MS);
  }
}

function renderStyleList(body) {
  const signature = JSON.stringify([body.styles.map((s) => [s.name, s.display_name, s.version]), body.hidden]);
  if (signature === styleAdmin.signature) return; // keep a half-typed name while nothing changed
  styleAdmin.signature = signature;
  const last = body.styles.length <= 1;
  $("#style-list").replaceChildren(...body.styles.map((style) => styleCard(style, last)));
  $("#styles-count").textContent = `${body.styles.length} live${body.hidden.length ? `, ${body.hidden.length} hidden` : ""}`;
  renderHidden(body.hidden || []);
}

function styleCard(style, last) {
  const card = $("#style-template").content.firstElementChild.cloneNode(true);
  card.dataset.style = style.name;
  $(".style-thumb", card).src = style.thumbnail;
  const input = $(".style-display", card);
  input.value = style.display_name || style.name;
  const form = $(".style-rename", card);
  form.id = `rename-${style.name}`;
  $(".style-save", card).setAttribute("form", form.id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    patchStyle(style.name, { display_name: input.value }, "Renamed");
  });
  const variants = (style.variants || []).join(" + ");
  $(".style-sub", card).textContent = `${style.name} · ${variants}${style.shipped ? " · shipped" : ""}`;
  $(".style-download", card).addEventListener("click", () => downloadStyle(style.name));
  const remove = $(".style-remove", card);
  remove.textContent = style.shipped ? "Hide" : "Delete";
  remove.disabled = last;
  remove.title = last ? "The last style cannot be removed" : "";
  remove.addEventListener("click", () => removeStyle(style));
  return card;
}

function renderHidden(names) {
  const line = $("#hidden-styles");
  line.hidden = names.length === 0;
  line.replaceChildren(document.createTextNode("Hidden shipped styles:"), ...names.map((name) => {
    const button = Object.assign(document.createElement("button"), {
      type: "button", className: "btn small", textContent: `Show ${name}`,
    });
    button.dataset.style = name;
    button.addEventListener("click", () => patchStyle(name, { hidden: false }, `${name} is live again`));
    return button;
  }));
}

// api() has already asked for the token again when it throws "unauthorized"
const quietly = (action) => (...args) => action(...args).catch((err) => {
  if (err.message !== "unauthorized") toast(err.message, true);
});

const patchStyle = quietly(async (name, changes, done) => {
  const resp = await api(`/api/styles/${name}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(changes),
  });
  await reportStyleChange(resp, done);
});

const removeStyle = quietly(async (style) => {
  const label = style.display_name || style.name;
  const question = style.shipped
    ? `Hide "${label}"? It comes with StyleFusion: its files stay and you can show it again.`
    : `Delete "${label}"? Its files are removed; live viewers move to another style.`;
  if (!window.confirm(question)) return;
  const resp = await api(`/api/styles/${style.name}`, { method: "DELETE" });
  await reportStyleChange(resp, style.shipped ? `${label} hidden` : `${label} deleted`);
});

async function reportStyleChange(resp, done) {
  const body = await resp.json().catch(() => ({}));
  if (resp.ok) toast(done);
  else toast(body.error || `HTTP ${resp.status}`, true);
  styleAdmin.signature = "";
  await refreshStyleList();
  loadStyles(); // the clip form's style menu
}

const downloadStyle = quietly(async (name) => {
  const resp = await api(`/api/styles/${name}/download`);
  if (!resp.ok) {
    toast((await resp.json().catch(() => ({}))).error || "download failed", true);
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: `${name}.zip` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
});

refreshStyleList();
