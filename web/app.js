// StyleFusion live page: camera -> WebRTC -> server (stylized) -> back, with a "control" data channel.
import { blendApplied, blendCurrent, blendStyles, resend as resendBlend, setupBlend } from "./blend.js";
import { cameraConstraint, refreshCameras, setupCapture } from "./capture.js";
import { endShare, publish, setupShare, sharing, watchOwn } from "./share.js";

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"), stop: $("stop"), style: $("style"), grid: $("style-grid"),
  resolution: $("resolution"), strength: $("strength"), strengthValue: $("strength-value"),
  local: $("local"), remote: $("remote"), connection: $("connection"), toast: $("toast"),
  stats: $("stats"), fpsIn: $("fps-in"), fpsOut: $("fps-out"), latency: $("latency"),
  batch: $("batch"), dropped: $("dropped"), switching: $("switching"),
  localSize: $("local-size"), remoteStyle: $("remote-style"), budget: $("budget"),
};
const CONNECT_TIMEOUT_MS = 10000; // a connection not up by then has failed, visibly
const RETRY_DELAYS_MS = [1000, 2000, 4000, 5000]; // between reconnect attempts, then every 5 s

const state = {
  config: { iceServers: [] },
  styles: [],
  displayNames: new Map(),
  pc: null,
  channel: null,
  stream: null,
  activeStyle: null,
  pendingStyle: null,
  strengthTimer: null,
  mix: "", // the blend the server acked ("50% Oil"), shown beside the style
  budget: null, // the server's {max_width, max_height, max_fps}, applied to the sender
  wanted: false, // the user pressed Start and not Stop: keep (re)connecting
  attempt: 0,
  retryTimer: null,
  connectTimer: null,
};

// ---------- small helpers ----------
function toast(text, kind = "info") {
  ui.toast.textContent = text;
  ui.toast.className = `toast ${kind}`;
  ui.toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { ui.toast.hidden = true; }, kind === "error" ? 6000 : 3000);
}

function setConnection(stateName) {
  ui.connection.dataset.state = stateName;
  ui.connection.querySelector("span").textContent = stateName;
  document.body.dataset.connection = stateName;
}

function displayName(name) {
  return state.displayNames.get(name) || name;
}

function setLive(video, live) {
  video.closest(".frame").classList.toggle("live", live);
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// ---------- styles ----------
function renderStyles(styles, defaultName) {
  const known = new Set(state.styles.map((s) => s.name));
  const fresh = state.styles.length ? styles.filter((s) => !known.has(s.name)) : [];
  const current = ui.style.value || state.activeStyle || defaultName;
  state.styles = styles;
  state.displayNames = new Map(styles.map((s) => [s.name, s.display_name || s.name]));

  ui.style.replaceChildren(...styles.map((s) => new Option(displayName(s.name), s.name)));
  const names = styles.map((s) => s.name);
  ui.style.value = names.includes(current) ? current : (defaultName || names[0] || "");
  blendStyles(styles, ui.style.value);

  ui.grid.replaceChildren(...styles.map((s) => {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = "style-tile";
    tile.dataset.style = s.name;
    tile.setAttribute("role", "option");
    tile.title = displayName(s.name);
    const img = new Image();
    img.src = s.thumbnail;
    img.alt = "";
    img.loading = "lazy";
    const label = document.createElement("span");
    label.textContent = displayName(s.name);
    tile.append(img, label);
    if (fresh.some((f) => f.name === s.name)) tile.classList.add("fresh");
    tile.addEventListener("click", () => chooseStyle(s.name));
    return tile;
  }));
  markTiles();
  if (fresh.length) toast(`New style ready: ${fresh.map((s) => displayName(s.name)).join(", ")}`);
  if (!styles.length) ui.grid.textContent = "No styles yet: train one in the Studio.";
}

function markTiles() {
  for (const tile of ui.grid.querySelectorAll(".style-tile")) {
    tile.setAttribute("aria-selected", String(tile.dataset.style === ui.style.value));
    tile.classList.toggle("pending", tile.dataset.style === state.pendingStyle);
  }
}

function chooseStyle(name) {
  ui.style.value = name;
  blendCurrent(name);
  markTiles();
  if (state.channel && state.channel.readyState === "open") {
    state.pendingStyle = name;
    ui.switching.hidden = false;
    state.channel.send(JSON.stringify({ style: name }));
  }
  markTiles();
}

function styleApplied(name) {
  state.activeStyle = name;
  if (state.pendingStyle === name) state.pendingStyle = null;
  ui.switching.hidden = state.pendingStyle === null ? true : ui.switching.hidden;
  showPainting();
  document.body.dataset.activeStyle = name;
  markTiles();
}

// ---------- control channel ----------
function onControlMessage(event) {
  let message;
  try { message = JSON.parse(event.data); } catch { return; }
  switch (message.event) {
    case "stats": showStats(message); break;
    case "style": styleApplied(message.style); toast(`Now painting in ${displayName(message.style)}`); break;
    case "styles": renderStyles(message.styles, message.default); break;
    case "budget": applyBudget(message); break;
    case "blend": blendApplied(message); break;
    case "error":
      state.pendingStyle = null;
      ui.switching.hidden = true;
      markTiles();
      toast(message.error, "error");
      break;
    default: break;
  }
}

function showStats(s) {
  ui.fpsIn.textContent = s.fps_in.toFixed(1);
  ui.fpsOut.textContent = s.fps_out.toFixed(1);
  ui.latency.textContent = `${s.latency_ms.toFixed(0)} ms`;
  ui.batch.textContent = s.batch ? s.batch.toFixed(1) : "–";
  ui.dropped.textContent = String(s.dropped_total ?? s.dropped);
  ui.stats.textContent =
    `${displayName(s.style)}` +
    (s.blend ? ` + ${Math.round(s.blend.amount * 100)}% ${displayName(s.blend.style)}` : "") +
    ` · ${s.fps_out.toFixed(1)} fps · ${s.latency_ms.toFixed(1)} ms in server ` +
    `(queue ${s.queue_ms.toFixed(1)} · model ${s.inference_ms.toFixed(1)}) · ` +
    `strength ${Math.round(s.strength * 100)}% · ${s.dropped} dropped this second` +
    (s.size_in ? ` · camera arrives at ${s.size_in.replace("x", "×")}` : "");
  document.body.dataset.statsCount = String(Number(document.body.dataset.statsCount || 0) + 1);
  if (!state.activeStyle) styleApplied(s.style);
}

function resetStats() {
  for (const el of [ui.fpsIn, ui.fpsOut, ui.latency, ui.batch, ui.dropped]) el.textContent = "–";
  ui.stats.textContent = "Not streaming";
}

// ---------- send budget ----------
function cameraSize() {
  // "auto": the size the server says it can paint for one more viewer
  if (ui.resolution.value !== "auto") return ui.resolution.value.split("x").map(Number);
  const budget = state.budget || (state.config && state.config.budget);
  return budget ? [budget.max_width, budget.max_height] : [640, 480];
}

async function applyBudget(budget) {
  state.budget = budget;
  ui.budget.textContent = `${budget.max_width}×${budget.max_height} @ ${budget.max_fps}`;
  document.body.dataset.budget = `${budget.max_width}x${budget.max_height}@${budget.max_fps}`;
  const sender = state.pc && state.pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (!sender) return;
  const { width, height } = sender.track.getSettings();
  const scale = width && height ? Math.max(1, width / budget.max_width, height / budget.max_height) : 1;
  try {
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    params.encodings[0].scaleResolutionDownBy = scale;
    params.encodings[0].maxFramerate = budget.max_fps;
    await sender.setParameters(params);
  } catch (error) {
    // older engines: ask the camera itself for less instead
    await sender.track.applyConstraints({
      width: { max: budget.max_width }, height: { max: budget.max_height }, frameRate: { max: budget.max_fps },
    }).catch(() => {});
  }
  document.body.dataset.sendScale = String(scale);
}

// ---------- camera ----------
function constraints() {
  const [width, height] = cameraSize();
  const video = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: 30 } };
  return { audio: false, video: { ...video, ...cameraConstraint() } };
}

async function openCamera() {
  const stream = await navigator.mediaDevices.getUserMedia(constraints());
  const settings = stream.getVideoTracks()[0].getSettings();
  ui.localSize.textContent = settings.width ? `${settings.width}×${settings.height}` : "";
  refreshCameras(stream).catch(() => {}); // labels and the list are known once the camera is allowed
  return stream;
}

async function changeResolution() {
  if (!state.pc || !state.stream) return;
  try {
    state.stream.getTracks().forEach((t) => t.stop()); // phones open one camera at a time
    const stream = await openCamera();
    const sender = state.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    await sender.replaceTrack(stream.getVideoTracks()[0]);
    state.stream = stream;
    ui.local.srcObject = stream;
    if (state.budget) await applyBudget(state.budget);
  } catch (error) {
    toast(`Could not reopen the camera: ${error.message}`, "error");
  }
}

// ---------- connection ----------
function waitForIceGathering(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs); // aiortc wants every candidate in the offer; do not wait forever
  });
}

async function start() {
  ui.start.disabled = true;
  ui.stop.disabled = false; // stop also cancels a start or a reconnect in progress
  state.wanted = true;
  state.attempt = 0;
  setConnection("connecting");
  try {
    state.stream = await openCamera();
  } catch (error) {
    toast(error.name === "NotAllowedError" ? "Camera access was denied." : error.message, "error");
    await stop();
    setConnection("error");
    return;
  }
  ui.local.srcObject = state.stream;
  setLive(ui.local, true);
  await connect();
}

// One connection attempt with the open camera; a failure schedules the next attempt.
async function connect() {
  clearTimeout(state.retryTimer);
  const pc = new RTCPeerConnection({ iceServers: state.config.iceServers || [] });
  state.pc = pc;
  state.stream.getTracks().forEach((track) => pc.addTrack(track, state.stream));
  const channel = pc.createDataChannel("control");
  state.channel = channel;
  channel.addEventListener("message", onControlMessage);
  channel.addEventListener("open", onChannelOpen);
  channel.addEventListener("close", () => connectionLost(pc, "the server closed the session"));
  pc.addEventListener("track", (event) => {
    ui.remote.srcObject = event.streams[0] || new MediaStream([event.track]);
  });
  pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    // shared: the camera goes to /whip as a stream, and comes back as its watchers see it
    const answer = sharing() ? await publish(pc.localDescription.sdp, ui.style.value) : await askOffer(pc);
    if (!answer || state.pc !== pc) return; // warming up, or stopped meanwhile
    await pc.setRemoteDescription(answer);
    if (sharing()) await watchOwn(ui.remote, state.config.iceServers || []);
    state.connectTimer = setTimeout(() => {
      if (state.pc === pc && pc.connectionState !== "connected") {
        connectionLost(pc, "the server's media could not be reached (ICE failed; check the network or the ICE servers)");
      }
    }, CONNECT_TIMEOUT_MS);
  } catch (error) {
    connectionLost(pc, error.message === "Failed to fetch" || error.name === "TypeError" ? "the server is not answering" : error.message);
  }
}

// POST /offer; the answer, or null when the server asks to come back later.
async function askOffer(pc) {
  const response = await fetch("/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type, style: ui.style.value || undefined }),
  });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (response.status === 503 && /^warming up/.test(answer.error || "")) {
    warmingUp(pc, Number(response.headers.get("Retry-After")) || 5, answer.error);
    return null;
  }
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

// Share started or stopped: the same camera, a new session of the other kind.
function reshare() {
  if (!state.stream) {
    start();
    return;
  }
  closeConnection();
  state.attempt = 0;
  connect();
}

function onChannelOpen() {
  state.attempt = 0;
  sendStrength();
  resendBlend();
  // the offer named the chosen style, so a switch pending when the session dropped is done
  state.pendingStyle = null;
  ui.switching.hidden = true;
  markTiles();
}

function onConnectionState(pc) {
  if (state.pc !== pc) return;
  setConnection(pc.connectionState);
  if (pc.connectionState === "connected") {
    clearTimeout(state.connectTimer);
    state.attempt = 0;
  } else if (pc.connectionState === "failed") {
    connectionLost(pc, "the connection failed");
  } else if (pc.connectionState === "disconnected") {
    // a brief network hiccup can heal itself; a dead server will not
    setTimeout(() => {
      if (state.pc === pc && pc.connectionState === "disconnected") connectionLost(pc, "the connection dropped");
    }, 3000);
  }
}

// The session is gone: say so, keep the camera, and try again with the same style and strength.
function connectionLost(pc, reason) {
  if (state.pc !== pc || !state.wanted) return;
  clearTimeout(state.connectTimer);
  closeConnection();
  const delay = RETRY_DELAYS_MS[Math.min(state.attempt, RETRY_DELAYS_MS.length - 1)];
  state.attempt += 1;
  setConnection("reconnecting");
  document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects || 0) + 1);
  toast(`Connection lost: ${reason}. Reconnecting in ${Math.round(delay / 1000)} s (attempt ${state.attempt})…`, "error");
  state.retryTimer = setTimeout(() => { if (state.wanted && !state.pc) connect(); }, delay);
}

// The server cannot take viewers yet (e.g. no style is loaded): not a lost session, just wait.
function warmingUp(pc, seconds, reason) {
  if (state.pc !== pc || !state.wanted) return;
  closeConnection();
  setConnection("warming up");
  const why = reason.replace(/^warming up: /, "").replace(/; try again.*$/, "");
  toast(`The server is not ready yet (${why}). Connecting as soon as it is…`);
  state.retryTimer = setTimeout(() => { if (state.wanted && !state.pc) connect(); }, seconds * 1000);
}

function closeConnection() {
  const { pc } = state;
  state.pc = null;
  state.channel = null;
  endShare(); // a shared stream ends for its watchers too (a reconnect shares it again)
  if (pc) pc.close();
  ui.remote.srcObject = null;
  setLive(ui.remote, false);
  state.activeStyle = null;
  state.mix = "";
}

async function stop() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  clearTimeout(state.connectTimer);
  closeConnection();
  const { stream } = state;
  state.stream = null;
  state.pendingStyle = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  ui.local.srcObject = null;
  setLive(ui.local, false);
  ui.switching.hidden = true;
  ui.remoteStyle.textContent = "";
  ui.localSize.textContent = "";
  ui.start.disabled = false;
  ui.stop.disabled = true;
  delete document.body.dataset.activeStyle;
  setConnection("idle");
  resetStats();
  markTiles();
}

// What the stylized video shows: the style, and the mix if a second style is blended in.
function showPainting() {
  const mix = state.mix ? ` + ${state.mix}` : "";
  ui.remoteStyle.textContent = state.activeStyle ? `${displayName(state.activeStyle)}${mix}` : "";
}

function sendControl(message) {
  if (!state.channel || state.channel.readyState !== "open") return false;
  state.channel.send(JSON.stringify(message));
  return true;
}

// ---------- strength ----------
function sendStrength() {
  const value = Number(ui.strength.value);
  if (state.channel && state.channel.readyState === "open") {
    state.channel.send(JSON.stringify({ strength: value }));
  }
}

function onStrengthInput() {
  ui.strengthValue.textContent = `${Math.round(Number(ui.strength.value) * 100)}%`;
  clearTimeout(state.strengthTimer);
  state.strengthTimer = setTimeout(sendStrength, 60); // at most ~15 messages a second
}

// ---------- boot ----------
async function boot() {
  ui.start.addEventListener("click", start);
  ui.stop.addEventListener("click", stop);
  ui.style.addEventListener("change", () => chooseStyle(ui.style.value));
  ui.resolution.addEventListener("change", changeResolution);
  ui.strength.addEventListener("input", onStrengthInput);
  setupBlend({ send: sendControl, onApplied: (mix) => { state.mix = mix; showPainting(); } });
  ui.remote.addEventListener("playing", () => setLive(ui.remote, true));
  setupCapture({
    remote: ui.remote,
    local: ui.local,
    settings: () => ({
      style: state.activeStyle || ui.style.value,
      strength: Number(ui.strength.value),
      limits: state.config.snapshot,
    }),
    onCameraChange: changeResolution,
    toast,
  });
  setupShare({ onChange: reshare, toast });
  window.addEventListener("pagehide", () => { endShare(); if (state.pc) state.pc.close(); });
  setConnection("idle");
  try {
    const [config, styles] = await Promise.all([getJSON("/api/config"), getJSON("/api/styles")]);
    state.config = config;
    renderStyles(styles.styles, styles.default);
  } catch (error) {
    toast(`The server is not answering: ${error.message}`, "error");
  }
  if (!navigator.mediaDevices || !window.RTCPeerConnection) {
    ui.start.disabled = true;
    toast("This browser cannot stream from a camera (a secure context is needed).", "error");
  }
  document.body.dataset.ready = "true";
}

boot();
