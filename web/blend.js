// Mix a second style into the current one, live: {"blend": {"style", "amount"}} over the control
// channel; the server lerps the two styles' norms (styles of one multi-style network only) and
// answers {"event": "blend"} once frames painted that way go out.
const $ = (id) => document.getElementById(id);
const ui = { style: $("blend-style"), amount: $("blend"), value: $("blend-value"), hint: $("blend-hint") };
const MIX_HINT = "Mixing needs two styles of one multi-style network.";

const blend = {
  styles: [], // /api/styles entries: name, display_name, network
  current: "", // the style being painted (or chosen)
  send: () => false, // (message) -> whether it went out
  onApplied: () => {},
  timer: null,
};

function displayName(name) {
  const style = blend.styles.find((s) => s.name === name);
  return (style && style.display_name) || name;
}

// The styles that can be mixed into the current one: the others of its network.
function partners() {
  const mine = blend.styles.find((s) => s.name === blend.current);
  if (!mine) return [];
  return blend.styles.filter((s) => s.name !== mine.name && s.network === mine.network);
}

function render() {
  const chosen = ui.style.value;
  const options = partners();
  ui.style.replaceChildren(...options.map((s) => new Option(s.display_name || s.name, s.name)));
  if (options.some((s) => s.name === chosen)) ui.style.value = chosen;
  const usable = options.length > 0;
  ui.style.disabled = ui.amount.disabled = !usable;
  ui.hint.textContent = usable ? "" : MIX_HINT;
  if (!usable && Number(ui.amount.value) > 0) {
    ui.amount.value = "0"; // the server turns a blend across networks off by itself
    showAmount();
  }
}

function showAmount() {
  ui.value.textContent = `${Math.round(Number(ui.amount.value) * 100)}%`;
}

function message() {
  return { blend: { style: ui.style.value, amount: Number(ui.amount.value) } };
}

// Send the blend (at most ~15 messages a second while the slider moves).
function schedule() {
  showAmount();
  clearTimeout(blend.timer);
  blend.timer = setTimeout(resend, 60);
}

export function resend() {
  if (ui.style.value && (Number(ui.amount.value) > 0 || document.body.dataset.blend)) {
    blend.send(message());
  }
}

export function setupBlend({ send, onApplied }) {
  blend.send = send;
  blend.onApplied = onApplied;
  ui.amount.addEventListener("input", schedule);
  ui.style.addEventListener("change", schedule);
  render();
}

export function blendStyles(styles, current) {
  blend.styles = styles;
  blend.current = current;
  render();
}

export function blendCurrent(current) {
  blend.current = current;
  render();
}

// The server's {"event": "blend"}: frames with this mix are going out.
export function blendApplied({ style, amount }) {
  document.body.dataset.blend = amount > 0 ? `${style}:${amount}` : "";
  blend.onApplied(amount > 0 ? `${Math.round(amount * 100)}% ${displayName(style)}` : "");
}
