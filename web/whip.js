// WHIP and WHEP over fetch (RFC 9725): POST an SDP offer, trickle candidates, DELETE the session.
// Used by the watch page (a WHEP player) and by the live page's Share (a WHIP publisher).

// An HTTP refusal: its status, the server's JSON error and Retry-After (seconds, or 0).
export class Refused extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// POST an offer; resolves to the session {url, etag, answer} of a 201, else throws Refused.
export async function postOffer(endpoint, sdp, token) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", ...authHeaders(token) },
    body: sdp,
  });
  if (response.status !== 201) {
    const body = await response.json().catch(() => ({}));
    const retryAfter = Number(response.headers.get("Retry-After")) || 0;
    throw new Refused(response.status, body.error || `HTTP ${response.status}`, retryAfter);
  }
  const url = new URL(response.headers.get("Location"), new URL(endpoint, location.href)).href;
  return { url, etag: response.headers.get("ETag"), answer: await response.text(), token };
}

// End a session (fire and forget: also sent while the page unloads).
export function hangUp(session) {
  if (!session) return;
  fetch(session.url, { method: "DELETE", headers: authHeaders(session.token), keepalive: true })
    .catch(() => {});
}

// Send the candidates of pc as it gathers them, in order, once the session URL is known.
function trickle(pc) {
  const lines = [];
  let session = null;
  let chain = Promise.resolve();
  const send = (line) => {
    chain = chain.then(() => fetch(session.url, {
      method: "PATCH",
      headers: { "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": session.etag },
      body: fragment(pc.localDescription.sdp, line),
    })).catch(() => {}); // a lost candidate is not fatal: the server learns ours from its checks
  };
  pc.addEventListener("icecandidate", (event) => {
    if (event.candidate && !event.candidate.candidate) return; // Firefox's empty end marker
    const line = event.candidate ? `a=${event.candidate.candidate}` : "a=end-of-candidates";
    if (session) send(line); else lines.push(line);
  });
  return (known) => { session = known; lines.splice(0).forEach(send); };
}

// An RFC 8840 fragment for the first (bundled) media section of our offer.
function fragment(sdp, line) {
  const lines = sdp.split(/\r?\n/);
  const first = (prefix) => lines.find((l) => l.startsWith(prefix)) || "";
  const head = [first("a=ice-ufrag:"), first("a=ice-pwd:"), first("m="), first("a=mid:")];
  return `${[...head.filter(Boolean), line].join("\r\n")}\r\n`;
}

// Watch a stream with WHEP: its video (and sound) into `video`; resolves to {pc, session}.
export async function watch(endpoint, { video, token, iceServers = [] }) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    if (video.srcObject !== stream) video.srcObject = stream;
  });
  const ready = trickle(pc); // the offer goes at once; candidates follow as they come
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const session = await postOffer(endpoint, pc.localDescription.sdp, token);
    await pc.setRemoteDescription({ type: "answer", sdp: session.answer });
    ready(session);
    return { pc, session };
  } catch (error) {
    pc.close();
    throw error;
  }
}
