// The live page's Share: the camera goes out as a stream (WHIP), stylized once for every watcher,
// and the page shows it back the way its watchers get it (WHEP). The control channel rides on
// the WHIP connection, so style, strength, stats and the send budget work as before.
import { Refused, hangUp, postOffer, watch } from "./whip.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "stylefusion.publishToken";
const ui = {};
const state = { name: null, token: "", publishing: null, own: null, toast: () => {} };

// Wire the Share box: onChange() is called when sharing starts or stops (the page reconnects).
export function setupShare({ onChange, toast }) {
  Object.assign(ui, {
    box: $("share-box"), name: $("share-name"), token: $("share-token"), go: $("share"),
    live: $("share-live"), link: $("share-link"), copy: $("share-copy"), stop: $("share-stop"),
    form: $("share-form"),
  });
  state.toast = toast;
  ui.token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  ui.go.addEventListener("click", () => {
    if (!ui.name.reportValidity()) return;
    state.name = ui.name.value;
    state.token = ui.token.value;
    onChange();
  });
  ui.stop.addEventListener("click", () => { stopSharing(); onChange(); });
  ui.copy.addEventListener("click", () => {
    navigator.clipboard.writeText(ui.link.href).then(() => toast("Watch link copied"), () => {});
  });
}

// The stream name while the user wants to share, else null.
export function sharing() {
  return state.name;
}

function stopSharing() {
  state.name = null;
  endShare();
  ui.form.hidden = false;
  ui.live.hidden = true;
}

// POST the camera's offer to /whip/NAME; resolves to the answer ({type, sdp}).
export async function publish(sdp, style) {
  const endpoint = `/whip/${encodeURIComponent(state.name)}?style=${encodeURIComponent(style)}`;
  try {
    state.publishing = await postOffer(endpoint, sdp, state.token);
  } catch (error) {
    if (error instanceof Refused && [400, 401, 409].includes(error.status) && state.name) {
      const name = state.name; // a wrong token, a bad or taken name: stream as before instead
      stopSharing();
      throw new Error(`could not share "${name}": ${error.message}`);
    }
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  const watchUrl = new URL(`/watch/${encodeURIComponent(state.name)}`, location.href).href;
  ui.link.href = watchUrl;
  ui.link.textContent = watchUrl;
  ui.form.hidden = true;
  ui.live.hidden = false;
  document.body.dataset.sharing = state.name;
  return { type: "answer", sdp: state.publishing.answer };
}

// Show the stream in `video` as its watchers see it.
export async function watchOwn(video, iceServers) {
  try {
    state.own = await watch(`/whep/${encodeURIComponent(state.name)}`, {
      video, token: state.token, iceServers,
    });
  } catch (error) {
    state.toast(`The stream is out, but it cannot be shown here: ${error.message}`, "error");
  }
}

// End the WHIP session (watchers see the stream end) and the page's own WHEP view.
export function endShare() {
  hangUp(state.publishing);
  state.publishing = null;
  if (state.own) {
    hangUp(state.own.session);
    state.own.pc.close();
    state.own = null;
  }
  delete document.body.dataset.sharing;
}
