// The watch page, /watch/NAME: a WHEP player in the whole window (fit for an OBS Browser Source).
// It waits for the stream to go live, plays it, and comes back by itself when it restarts.
// A watch token goes in the address's fragment (never sent to the server in the URL):
// /watch/NAME#token=TOKEN. Moving the mouse shows a style menu (the publish token changes it).
import { Refused, hangUp, watch } from "./whip.js";

const $ = (id) => document.getElementById(id);
const ui = {
  video: $("video"), status: $("status"), sound: $("sound"), controls: $("controls"),
  style: $("style"), tokenField: $("token-field"), token: $("token"), note: $("controls-note"),
};
const NAME = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const WATCH_TOKEN = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const RETRY_MS = 2000; // while the stream is not live, or after it ended
const TOKEN_KEY = "stylefusion.publishToken";
const state = { pc: null, session: null, iceServers: [], retry: null, hideControls: null };

function show(stateName, text) {
  document.body.dataset.state = stateName;
  ui.status.textContent = text;
}

async function connect() {
  clearTimeout(state.retry);
  show("connecting", `Connecting to ${NAME}…`);
  try {
    const { pc, session } = await watch(`/whep/${encodeURIComponent(NAME)}`, {
      video: ui.video, token: WATCH_TOKEN, iceServers: state.iceServers,
    });
    state.pc = pc;
    state.session = session;
    pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  } catch (error) {
    refused(error);
  }
}

function refused(error) {
  const status = error instanceof Refused ? error.status : 0;
  if (status === 404) show("waiting", `Waiting for ${NAME} to go live…`);
  else if (status === 401) return show("refused", "This stream needs a watch token: open it as /watch/NAME#token=TOKEN.");
  else if (status === 400) return show("refused", error.message);
  else show("waiting", `${error.message} — trying again…`);
  const seconds = error instanceof Refused ? error.retryAfter : 0;
  state.retry = setTimeout(connect, Math.max(RETRY_MS, seconds * 1000));
}

function onConnectionState(pc) {
  if (state.pc !== pc) return;
  const now = pc.connectionState;
  if (now === "connected") play();
  if (now === "failed" || now === "closed") ended();
  if (now === "disconnected") {
    setTimeout(() => { if (state.pc === pc && pc.connectionState === "disconnected") ended(); }, 3000);
  }
}

// The publisher stopped (or the network went): wait for the stream to come back.
function ended() {
  const { pc } = state;
  state.pc = null;
  state.session = null; // the server closed it: no DELETE to send
  if (pc) pc.close();
  ui.video.srcObject = null;
  show("ended", `${NAME} has ended — waiting for it to come back…`);
  state.retry = setTimeout(connect, RETRY_MS);
}

// Sound if the browser allows it unasked (OBS does), else muted with a button to unmute.
async function play() {
  try {
    ui.video.muted = false;
    await ui.video.play();
  } catch {
    ui.video.muted = true;
    await ui.video.play().catch(() => {});
    ui.sound.hidden = false;
  }
  show("playing", "");
}

function unmute() {
  ui.video.muted = false;
  ui.video.play().catch(() => {});
  ui.sound.hidden = true;
}

// ---------- the style menu: shown while the mouse moves ----------
async function loadStyles() {
  const [styles, streams] = await Promise.all(["/api/styles", "/api/streams"].map(
    (url) => fetch(url, { headers: WATCH_TOKEN ? { Authorization: `Bearer ${WATCH_TOKEN}` } : {} })
      .then((r) => (r.ok ? r.json() : {})),
  ));
  const current = (streams.streams || []).find((s) => s.name === NAME);
  ui.style.replaceChildren(...(styles.styles || []).map(
    (s) => new Option(s.display_name || s.name, s.name),
  ));
  if (current) ui.style.value = current.style;
}

function revealControls() {
  if (ui.controls.hidden) loadStyles().catch(() => {});
  ui.controls.hidden = false;
  clearTimeout(state.hideControls);
  state.hideControls = setTimeout(() => {
    if (!ui.controls.contains(document.activeElement)) ui.controls.hidden = true;
  }, 3000);
}

async function restyle() {
  const token = ui.token.value || sessionStorage.getItem(TOKEN_KEY) || "";
  const response = await fetch(`/api/streams/${encodeURIComponent(NAME)}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ style: ui.style.value }),
  });
  const body = await response.json().catch(() => ({}));
  ui.tokenField.hidden = response.status !== 401;
  ui.note.textContent = response.ok ? "" : body.error || `HTTP ${response.status}`;
  if (response.ok && token) sessionStorage.setItem(TOKEN_KEY, token);
}

async function boot() {
  document.title = `${NAME} · StyleFusion`;
  ui.sound.addEventListener("click", unmute);
  ui.style.addEventListener("change", () => restyle().catch((e) => { ui.note.textContent = e.message; }));
  ui.token.addEventListener("change", () => restyle().catch(() => {}));
  ui.controls.addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("mousemove", revealControls);
  window.addEventListener("pagehide", () => hangUp(state.session));
  try {
    state.iceServers = (await (await fetch("/api/config")).json()).iceServers || [];
  } catch {
    state.iceServers = [];
  }
  connect();
}

boot();
