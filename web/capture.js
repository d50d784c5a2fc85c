// Keep what you see: record the stylized stream (WebM), snapshot a frame (PNG), pick a camera.
const $ = (id) => document.getElementById(id);
const WEBM_TYPES = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"];

const capture = {
  remote: null,
  toast: () => {},
  recorder: null,
  chunks: [],
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

// ---------- snapshot ----------
function snapshot() {
  const video = capture.remote;
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob((blob) => {
    if (blob) save(blob, fileName("png"));
    else capture.toast("Could not take a snapshot.", "error");
  }, "image/png");
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
  if (blob.size) save(blob, fileName(type.includes("mp4") ? "mp4" : "webm"));
}

function showElapsed() {
  const seconds = Math.floor((performance.now() - capture.startedAt) / 1000);
  const text = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  $("record-time").querySelector("span").textContent = text;
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

/** Wire the record and snapshot buttons and the camera picker (onCameraChange reopens the camera). */
export function setupCapture({ remote, onCameraChange, toast }) {
  capture.remote = remote;
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
