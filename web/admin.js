// StyleFusion studio: admin token, three job forms, a live job list with previews and a loss chart.
"use strict";

const TOKEN_KEY = "stylefusion.adminToken";
const POLL_ACTIVE_MS = 1000;
const POLL_IDLE_MS = 5000;
const KIND_LABEL = { video: "Clip", render: "Render", train: "Training" };
const KIND_ICON = {
  video: '<svg viewBox="0 0 24 24"><path d="M4 6h11a1 1 0 0 1 1 1v3l4-3v10l-4-3v3a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z"/></svg>',
  render: '<svg viewBox="0 0 24 24"><path d="M4 5h16v14H4z M6 17h12l-4-5-3 4-2-2z"/></svg>',
  train: '<svg viewBox="0 0 24 24"><path d="M12 3l2.6 5.3 5.9.9-4.3 4.1 1 5.8L12 16.4 6.8 19.1l1-5.8L3.5 9.2l5.9-.9z"/></svg>',
};

const $ = (sel, root = document) => root.querySelector(sel);
const state = { jobs: new Map(), views: new Map(), timer: null, styles: [] };

// ---- token -------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  return { Authorization: `Bearer ${token()}` };
}

function askToken(message = "") {
  $("#token-error").textContent = message;
  $("#sign-out").hidden = true;
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
  $("#token").focus();
}

async function saveToken(event) {
  event.preventDefault();
  const value = $("#token").value.trim();
  if (!value) return;
  const resp = await fetch("/api/jobs", { headers: { Authorization: `Bearer ${value}` } });
  if (resp.status === 401) {
    $("#token-error").textContent = "That token is not right.";
    return;
  }
  if (resp.status === 429) {  // the server slows down repeated wrong tokens
    const wait = resp.headers.get("Retry-After") || "60";
    $("#token-error").textContent = `Too many wrong tokens: try again in ${wait} s.`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("#token-dialog").close();
  $("#sign-out").hidden = false;
  refresh();
}

async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken("Your token was refused; please enter it again.");
    throw new Error("unauthorized");
  }
  return resp;
}

// ---- forms -------------------------------------------------------------------------------

function setupTabs() {
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
      }
      for (const form of document.querySelectorAll(".job-form")) {
        form.hidden = form.dataset.kind !== tab.dataset.tab;
      }
      $("#form-message").textContent = "";
    });
  }
}

function setupInputs() {
  for (const range of document.querySelectorAll('input[type="range"]')) {
    const out = range.closest(".field").querySelector("output");
    range.addEventListener("input", () => { out.textContent = Number(range.value).toFixed(2); });
  }
  for (const input of document.querySelectorAll(".drop input[type=file]")) {
    const label = input.closest(".drop");
    input.addEventListener("change", () => {
      const file = input.files[0];
      label.classList.toggle("filled", Boolean(file));
      label.querySelector(".drop-text").innerHTML = file
        ? `<b>${escapeHtml(file.name)}</b> · ${formatBytes(file.size)}`
        : label.dataset.empty;
      if (input.name === "style_image" && input.form.id === "train-form") suggestName(file);
    });
    label.dataset.empty = label.querySelector(".drop-text").innerHTML;
    label.addEventListener("dragover", (e) => { e.preventDefault(); label.classList.add("over"); });
    label.addEventListener("dragleave", () => label.classList.remove("over"));
    label.addEventListener("drop", (e) => {
      e.preventDefault();
      label.classList.remove("over");
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    });
  }
}

function suggestName(file) {
  const name = $("#train-name");
  if (!file || name.value) return;
  name.value = file.name.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "").slice(0, 40);
}

// Plain fields go first (the server takes any order): a bad field is refused before any file
// is uploaded and stored.
function formBody(form) {
  const fields = [];
  const files = [];
  for (const [key, value] of new FormData(form)) {
    if (value instanceof File) {
      if (value.name) files.push([key, value]);
    } else if (value !== "") {
      fields.push([key, value]);
    }
  }
  const data = new FormData();
  const plain = form.dataset.kind === "train" ? trainFields(fields) : fields; // admin-train.js
  for (const [key, value] of plain) data.append(key, value);
  for (const [key, value] of files) data.append(key, value);
  return data;
}

function submitForm(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("button[type=submit]", form);
  const label = button.textContent;
  const message = $("#form-message");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/jobs/${form.dataset.kind}`);
  xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
  xhr.responseType = "json";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) button.textContent = `Uploading… ${Math.round((100 * e.loaded) / e.total)}%`;
  };
  xhr.onloadend = () => {
    button.disabled = false;
    button.textContent = label;
    const body = xhr.response || {};
    if (xhr.status === 202) {
      message.className = "form-message ok";
      message.textContent = "Queued. Follow it on the right.";
      toast(`${KIND_LABEL[form.dataset.kind]} job queued`);
      refresh();
    } else if (xhr.status === 401) {
      askToken("Your token was refused; please enter it again.");
    } else {
      message.className = "form-message error";
      message.textContent = body.error || `Upload failed (${xhr.status || "network error"})`;
    }
  };
  button.disabled = true;
  message.textContent = "";
  xhr.send(formBody(form));
}

async function loadStyles() {
  const resp = await fetch("/api/styles");
  if (!resp.ok) return;
  const body = await resp.json();
  const select = $("#video-style");
  const current = select.value || body.default;
  const names = body.styles.map((s) => s.name).join();
  if (names === state.styles.join()) return;
  state.styles = body.styles.map((s) => s.name);
  select.replaceChildren(...body.styles.map((s) => {
    const option = new Option(s.display_name || s.name, s.name);
    option.selected = s.name === current;
    return option;
  }));
}

// ---- job list ----------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  if (!token()) return;
  let active = false;
  try {
    const resp = await api("/api/jobs");
    const jobs = await resp.json();
    active = jobs.some((j) => j.state === "queued" || j.state === "running");
    renderJobs(jobs);
    await Promise.all(jobs.filter(needsDetail).map(loadDetail));
    // a trained style goes live when the server's registry next scans models/, which can be
    // after its job reads done: keep the style list in step on every poll (cheap if unchanged)
    await loadStyles();
  } catch (err) {
    if (err.message === "unauthorized") return;
  }
  state.timer = setTimeout(refresh, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
}

function renderJobs(jobs) {
  const list = $("#jobs");
  $("#jobs-empty").hidden = jobs.length > 0;
  const running = jobs.filter((j) => j.state === "running").length;
  const queued = jobs.filter((j) => j.state === "queued").length;
  $("#jobs-count").textContent = jobs.length ? `${jobs.length} in all` : "";
  const pill = $("#queue-pill");
  pill.dataset.state = running ? "connected" : queued ? "connecting" : "idle";
  pill.lastElementChild.textContent = running
    ? `${running} running${queued ? `, ${queued} queued` : ""}`
    : queued ? `${queued} queued` : "No jobs running";
  jobs.forEach((job, index) => {
    let view = state.views.get(job.id);
    if (!view) {
      view = createView(job);
      state.views.set(job.id, view);
    }
    const before = state.jobs.get(job.id);
    state.jobs.set(job.id, { ...before, ...job });
    updateView(view, job, before);
    if (list.children[index] !== view.root) list.insertBefore(view.root, list.children[index] || null);
  });
  const listed = new Set(jobs.map((j) => j.id));
  for (const [id, view] of state.views) {
    if (listed.has(id)) continue;  // removed here, elsewhere, or by the retention sweep
    view.root.remove();
    state.views.delete(id);
    state.jobs.delete(id);
  }
}

function createView(job) {
  const root = $("#job-template").content.firstElementChild.cloneNode(true);
  root.dataset.id = job.id;
  $(".job-icon", root).innerHTML = KIND_ICON[job.kind] || "";
  $(".job-cancel", root).addEventListener("click", () => cancelJob(job.id));
  $(".job-download", root).addEventListener("click", () => download(job.id));
  $(".job-watch", root).addEventListener("click", () => watch(job.id));
  $(".job-delete", root).addEventListener("click", () => deleteJob(job.id));
  return { root, previewVersion: null, resultLoaded: false };
}

function jobTitle(job) {
  const p = job.params || {};
  if (job.kind === "train") return [`Training · ${p.name}`, budgetText(p)];
  const named = (kind) => (p.title ? `${kind} · ${p.title}` : kind);
  const side = p.max_side ? `${p.max_side} px` : "original size";
  if (job.kind === "video") return [named("Clip"), `style ${p.style} · strength ${Number(p.strength).toFixed(2)} · ${side}`];
  return [named("Render"), `${p.size}px · ${p.iterations} iterations · ${p.optimizer}`];
}

function budgetText(p) {
  const budget = p.steps ? `${p.steps} steps` : `${p.seconds}s`;
  const how = p.backbone ? (p.fine_tune ? "shared network, fine-tuned" : "shared network") : "own network";
  return `${how} · ${p.variant} · ${budget} · ${p.size}px crops`;
}

function updateView(view, job, before) {
  const { root } = view;
  const [title, sub] = jobTitle(job);
  root.dataset.state = job.state;
  $(".job-title b", root).textContent = title;
  $(".job-sub", root).textContent = `${sub} · ${timeAgo(job.created)}`;
  $(".badge", root).textContent = job.state;
  $(".bar i", root).style.width = `${(100 * job.progress).toFixed(1)}%`;
  $(".job-progress", root).textContent = `${Math.floor(100 * job.progress)}%`;
  $(".job-eta", root).textContent = etaText(job);
  $(".job-metrics", root).textContent = metricsText(job.metrics);
  $(".job-error", root).textContent = job.error && job.state === "failed" ? job.error : "";
  const active = job.state === "queued" || job.state === "running";
  $(".job-cancel", root).hidden = !active;
  $(".job-delete", root).hidden = job.state === "running";
  const done = job.state === "done";
  $(".job-download", root).hidden = !done;
  $(".job-watch", root).hidden = !(done && job.kind === "video") || view.resultLoaded;
  $(".job-live", root).hidden = !(done && job.kind === "train");
  if (job.preview_url && job.preview_url !== view.previewVersion) loadPreview(view, job);
  if (done && job.kind === "render" && !view.resultLoaded) showRenderResult(view, job);
  if (done && before && before.state !== "done") toast(`${title} finished`);
}

function needsDetail(job) {
  const view = state.views.get(job.id);
  if (job.kind !== "train" && job.kind !== "render") return false;
  return job.state === "running" || (view && !view.historyLoaded && job.state !== "queued");
}

async function loadDetail(job) {
  const resp = await api(`/api/jobs/${job.id}`);
  if (!resp.ok) return;
  const detail = await resp.json();
  const view = state.views.get(job.id);
  view.historyLoaded = true;
  if (detail.history && detail.history.length > 1) drawChart($(".job-chart", view.root), detail.history);
}

async function loadPreview(view, job) {
  view.previewVersion = job.preview_url;
  const resp = await api(job.preview_url);
  if (!resp.ok) return;
  setImage($(".job-preview", view.root), await resp.blob());
}

async function showRenderResult(view, job) {
  view.resultLoaded = true;
  const resp = await api(job.result_url);
  if (resp.ok) setImage($(".job-preview", view.root), await resp.blob());
}

function setImage(img, blob) {
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  if (old.startsWith("blob:")) img.onload = () => URL.revokeObjectURL(old);
}

async function cancelJob(id) {
  const resp = await api(`/api/jobs/${id}/cancel`, { method: "POST" });
  if (resp.ok) toast("Cancelling…");
  refresh();
}

async function deleteJob(id) {
  const resp = await api(`/api/jobs/${id}`, { method: "DELETE" });
  if (!resp.ok) toast((await resp.json()).error || "could not remove the job", true);
  refresh();
}

// The result and the name the server gives it (after the upload and the style: holiday-candy.mp4).
async function result(id) {
  const job = state.jobs.get(id);
  const resp = await api(job.result_url);
  if (!resp.ok) throw new Error((await resp.json()).error || "no result");
  const disposition = resp.headers.get("Content-Disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `${job.kind}-${id}`;
  return { blob: await resp.blob(), name };
}

async function watch(id) {
  const view = state.views.get(id);
  const button = $(".job-watch", view.root);
  button.disabled = true;
  button.textContent = "Loading…";
  try {
    const video = $(".job-video", view.root);
    video.src = URL.createObjectURL((await result(id)).blob);
    video.hidden = false;
    view.resultLoaded = true;
    button.hidden = true;
    video.play().catch(() => {});
  } catch (err) {
    toast(err.message, true);
    button.disabled = false;
    button.textContent = "Watch";
  }
}

async function download(id) {
  try {
    const { blob, name } = await result(id);
    const url = URL.createObjectURL(blob);
    const link = Object.assign(document.createElement("a"), { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  } catch (err) {
    toast(err.message, true);
  }
}

// ---- loss chart --------------------------------------------------------------------------

function drawChart(canvas, history) {
  canvas.hidden = false;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480;
  const height = canvas.clientHeight || 180;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const points = history.filter((h) => Number.isFinite(h.loss) && h.loss > 0);
  if (points.length < 2) return;
  const pad = { l: 60, r: 12, t: 16, b: 22 };
  const steps = points.map((p) => p.step);
  const logs = points.map((p) => Math.log10(p.loss));
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  let [y0, y1] = [Math.min(...logs), Math.max(...logs)];
  if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
  const x = (s) => pad.l + ((s - x0) / Math.max(1, x1 - x0)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  drawGrid(ctx, width, height, pad, y0, y1, y, x0, x1);
  const gradient = ctx.createLinearGradient(pad.l, 0, width - pad.r, 0);
  gradient.addColorStop(0, "#8b5cf6");
  gradient.addColorStop(1, "#ec4899");
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.step), y(logs[i])));
  ctx.strokeStyle = gradient;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.stroke();
  ctx.lineTo(x(x1), height - pad.b);
  ctx.lineTo(x(x0), height - pad.b);
  ctx.closePath();
  ctx.fillStyle = "rgba(139, 92, 246, 0.12)";
  ctx.fill();
}

function drawGrid(ctx, width, height, pad, y0, y1, y, x0, x1) {
  ctx.font = "11px ui-monospace, Menlo, monospace";
  ctx.fillStyle = "#8a93a6";
  ctx.strokeStyle = "rgba(138, 147, 166, 0.15)";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 3; i++) {
    const v = y0 + ((y1 - y0) * i) / 3;
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(width - pad.r, y(v));
    ctx.stroke();
    ctx.fillText(formatLoss(10 ** v), 4, y(v) + 4);
  }
  ctx.fillText(`step ${x0}`, pad.l, height - 6);
  const last = `step ${x1}`;
  ctx.fillText(last, width - pad.r - ctx.measureText(last).width, height - 6);
  ctx.fillText("loss (log)", width - pad.r - 64, pad.t - 2);
}

// ---- formatting --------------------------------------------------------------------------

function etaText(job) {
  if (job.state === "queued") return "waiting for the worker";
  if (job.state !== "running") return job.finished && job.started ? `took ${duration(job.finished - job.started)}` : "";
  if (job.eta_s == null) return "estimating…";
  return `${duration(job.eta_s)} left`;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function metricsText(metrics) {
  if (!metrics || metrics.loss == null) return "";
  const parts = [`loss ${formatLoss(metrics.loss)}`];
  for (const key of ["content", "style"]) {
    if (metrics[key] != null) parts.push(`${key} ${formatLoss(metrics[key])}`);
  }
  return parts.join(" · ");
}

function formatLoss(value) {
  return value >= 1000 || value < 0.01 ? value.toExponential(2) : value.toPrecision(3);
}

function timeAgo(epoch) {
  const s = Date.now() / 1000 - epoch;
  return s < 60 ? "just now" : `${duration(s)} ago`;
}

function formatBytes(n) {
  return n > 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

let toastTimer = null;
function toast(text, error = false) {
  const el = $("#toast");
  el.textContent = text;
  el.className = error ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}

// ---- start -------------------------------------------------------------------------------

function main() {
  setupTabs();
  setupInputs();
  for (const form of document.querySelectorAll(".job-form")) form.addEventListener("submit", submitForm);
  $("#token-form").addEventListener("submit", saveToken);
  $("#token-dialog").addEventListener("cancel", (e) => e.preventDefault());
  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken();
  });
  loadStyles();
  if (token()) {
    $("#sign-out").hidden = false;
    refresh();
  } else {
    askToken();
  }
}

main();
