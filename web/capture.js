// Keep what you see: record the stylized stream (WebM), snapshot the camera painted at its own
// size (PNG, painted by the server), pick a camera.
const $ = (id) => document.getElementById(id);
const WEBM_TYPES = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"];

const capture = {
  remote: null,
  local: null,
  settings: () => ({}), // {style, strength, limits}: what a snapshot is painted with
  toast: () => {},
  recorder: null,
  chunks: [],
  recordedSize: "",
  playing: false,
  startedAt: 0,
  timer: null,
  cameraId: "",
};

// ---------- saving ----------
function fileName(extension) {
  const style = document.body.dataset.activeStyle || "stylefusion";
  const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-");
  return `stylefusion-${style}-${stamp}.${extension}`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function sizeText(width, height) {
  return `${width}×${height}`;
}

// ---------- snapshot ----------
// The stylized stream is as small as the server's send budget (240×180 with a few viewers on
// a CPU): a keepsake is the camera's own frame, painted once by the server in the same style.
function fitPixels(width, height, maxPixels) {
  const scale = maxPixels ? Math.min(1, Math.sqrt(maxPixels / (width * height))) : 1;
  return [Math.max(1, Math.floor(width * scale)), Math.max(1, Math.floor(height * scale))];
}

function cameraPicture(video, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(video, 0, 0, width, height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.95));
}

async function paint(picture, style, strength) {
  const query = new URLSearchParams({ style, strength: String(strength) });
  const response = await fetch(`/api/snapshot?${query}`, {
    method: "POST", headers: { "Content-Type": "image/jpeg" }, body: picture,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  return response.blob();
}

async function snapshot() {
  const video = capture.local;
  if (!video.videoWidth) return;
  const { style, strength, limits } = capture.settings();
  const [width, height] = fitPixels(video.videoWidth, video.videoHeight, limits && limits.max_pixels);
  const button = $("snapshot");
  button.disabled = true;
  button.querySelector("span").textContent = "Painting…";
  try {
    const picture = await cameraPicture(video, width, height);
    if (!picture) throw new Error("the camera frame could not be read");
    save(await paint(picture, style, strength), fileName("png"));
    capture.toast(`Saved a ${sizeText(width, height)} snapshot`);
  } catch (error) {
    capture.toast(`Could not paint the snapshot: ${error.message}`, "error");
  } finally {
    button.querySelector("span").textContent = "Snapshot";
    button.disabled = !capture.playing;
  }
}

// ---------- recording ----------
function recordingType() {
  return WEBM_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

function startRecording() {
  const stream = capture.remote.srcObject;
  if (!stream || !window.MediaRecorder) {
    capture.toast("This browser cannot record video.", "error");
    return;
  }
  const mimeType = recordingType();
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  capture.recorder = recorder;
  capture.chunks = [];
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) capture.chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => finishRecording(recorder));
  recorder.start(1000); // a chunk a second: a crash or a closed stream loses at most that
  capture.startedAt = performance.now();
  capture.timer = setInterval(showElapsed, 250);
  showElapsed();
  setRecording(true);
}

function stopRecording() {
  if (capture.recorder && capture.recorder.state !== "inactive") capture.recorder.stop();
}

function finishRecording(recorder) {
  clearInterval(capture.timer);
  setRecording(false);
  if (capture.recorder === recorder) capture.recorder = null;
  // WebM where the browser records it (Chrome, Firefox); older Safari records only MP4
  const type = recorder.mimeType || "video/webm";
  const blob = new Blob(capture.chunks, { type });
  capture.chunks = [];
  if (!blob.size) return;
  const kind = type.includes("mp4") ? "mp4" : "webm";
  save(blob, fileName(kind));
  const megabytes = (blob.size / 2 ** 20).toFixed(1);
  capture.toast(`Saved a ${capture.recordedSize} ${kind.toUpperCase()} recording (${megabytes} MB)`);
}

// The timer says how big the recording is: the stylized stream's size, which the server's
// send budget sets (it may change while recording when viewers come and go).
function showElapsed() {
  const seconds = Math.floor((performance.now() - capture.startedAt) / 1000);
  const time = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  const { videoWidth, videoHeight } = capture.remote;
  if (videoWidth) capture.recordedSize = sizeText(videoWidth, videoHeight);
  $("record-time").querySelector("span").textContent = `${time} · ${capture.recordedSize}`;
}

function setRecording(on) {
  const button = $("record");
  button.setAttribute("aria-pressed", String(on));
  button.querySelector("span").textContent = on ? "Stop recording" : "Record";
  $("record-time").hidden = !on;
  document.body.dataset.recording = String(on);
}

function toggleRecording() {
  if (capture.recorder) stopRecording();
  else startRecording();
}

function setPlaying(playing) {
  capture.playing = playing;
  $("record").disabled = !playing;
  $("snapshot").disabled = !playing;
  if (!playing) stopRecording(); // the stream went away: keep what was recorded
}

// ---------- camera picker ----------
/** The getUserMedia video constraint of the chosen camera ({} for the default one). */
export function cameraConstraint() {
  return capture.cameraId ? { deviceId: { exact: capture.cameraId } } : {};
}

/** List the cameras; the picker shows only when there are several (front/back on phones). */
export async function refreshCameras(stream = null) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const select = $("camera");
  const inUse = stream ? stream.getVideoTracks()[0]?.getSettings().deviceId : null;
  const current = inUse || capture.cameraId || select.value;
  select.replaceChildren(...cameras.map((camera, i) => new Option(camera.label || `Camera ${i + 1}`, camera.deviceId)));
  if (cameras.some((camera) => camera.deviceId === current)) select.value = current;
  $("camera-field").hidden = cameras.length < 2;
}

/**
 * Wire the record and snapshot buttons and the camera picker (onCameraChange reopens the
 * camera); settings() gives a snapshot's {style, strength, limits} (limits from /api/config).
 */
export function setupCapture({ remote, local, settings, onCameraChange, toast }) {
  capture.remote = remote;
  capture.local = local;
  capture.settings = settings;
  capture.toast = toast;
  $("record").addEventListener("click", toggleRecording);
  $("snapshot").addEventListener("click", snapshot);
  remote.addEventListener("playing", () => setPlaying(true));
  remote.addEventListener("emptied", () => setPlaying(false));
  $("camera").addEventListener("change", () => {
    capture.cameraId = $("camera").value;
    onCameraChange();
  });
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", () => refreshCameras());
  }
  refreshCameras().catch(() => {});
}
