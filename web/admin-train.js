// StyleFusion studio, Train form: what the run will be and about how long it takes, before it starts.
// Runs after admin.js and uses its helpers: $, authHeaders, token. The server answers
// GET /api/train/estimate with the run these settings start (its kind, steps, crop size, batch)
// and its expected seconds on the job device, or a 422 (a budget too small to converge).
"use strict";

const ESTIMATE_DELAY_MS = 400;
const trainPlan = { timer: null, seq: 0, abort: null, last: null };
const PLAIN_ONLY = new Set(["name", "display_name", "overwrite"]); // not part of the estimate

// The form's plain settings as the job API takes them: the budget kind picks the field, the
// "How" choice becomes backbone / fine_tune (`resolved`: the shared backbone to name, if any).
function trainFields(pairs, resolved = resolvedBackbone()) {
  const fields = new Map(pairs);
  const kind = fields.get("budget") || "steps";
  const budget = fields.get("budget_value");
  const mode = fields.get("mode") || "shared";
  for (const key of ["budget", "budget_value", "mode"]) fields.delete(key);
  if (budget) fields.set(kind, budget);
  if (mode === "single") {
    fields.set("backbone", "none");
  } else {
    if (resolved) fields.set("backbone", resolved);
    if (mode === "fine_tune") fields.set("fine_tune", "true");
  }
  return [...fields];
}

// The shared backbone the last estimate chose for these settings (null: none, or not asked yet),
// named in the job so that a budget it would refuse is refused before the painting uploads.
function resolvedBackbone() {
  const last = trainPlan.last;
  return last && last.mode !== "single" ? last.backbone : null;
}

function scheduleEstimate() {
  clearTimeout(trainPlan.timer);
  trainPlan.timer = setTimeout(updateEstimate, ESTIMATE_DELAY_MS);
}

async function updateEstimate() {
  const form = $("#train-form");
  if (form.hidden || !token()) return;
  const pairs = [];
  for (const [key, value] of new FormData(form)) {
    if (!(value instanceof File) && value !== "" && !PLAIN_ONLY.has(key)) pairs.push([key, value]);
  }
  const query = new URLSearchParams(trainFields(pairs, null)); // the server picks the backbone
  const seq = ++trainPlan.seq;
  if (trainPlan.abort) trainPlan.abort.abort();
  trainPlan.abort = new AbortController();
  const line = $("#train-estimate");
  line.className = "estimate";
  line.textContent = "Working out how long it takes…";
  let resp;
  let body;
  try {
    resp = await fetch(`/api/train/estimate?${query}`, { headers: authHeaders(), signal: trainPlan.abort.signal });
    body = await resp.json();
  } catch (err) {
    if (seq === trainPlan.seq) line.textContent = "";
    return;
  }
  if (seq !== trainPlan.seq) return;
  if (!resp.ok) {
    line.className = "estimate error";
    line.textContent = resp.status === 401 ? "" : body.error || `No estimate (${resp.status})`;
    return;
  }
  trainPlan.last = body;
  showEstimate(form, body);
}

function value(form, name) {
  const field = form.elements[name];
  return field ? field.value : "";
}

const MODE_TEXT = {
  norms: "the new style's norms fitted to the shared network",
  fine_tune: "the shared network fine-tuned for it",
  single: "a network of its own",
};

function showEstimate(form, est) {
  const seconds = value(form, "budget") === "seconds";
  $("#train-budget-value").placeholder = seconds ? "" : String(est.steps);
  $("#train-size").placeholder = String(est.size);
  $("#train-batch").placeholder = String(est.batch_size);
  const asked = value(form, "mode");
  const fallback = asked !== "single" && est.mode === "single" ? "No shared network for this in the models dir: " : "";
  const line = $("#train-estimate");
  line.className = "estimate";
  line.textContent = `${fallback}about ${duration(est.seconds)} on this server's ${est.device.split(":")[0].toUpperCase()}`
    + ` (${est.steps} steps of ${est.size} px crops, batch ${est.batch_size}: ${MODE_TEXT[est.mode]}).`;
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function setupTrainForm() {
  const form = $("#train-form");
  form.addEventListener("input", (e) => {
    if (!PLAIN_ONLY.has(e.target.name) && e.target.type !== "file") scheduleEstimate();
  });
  $("#train-mode").addEventListener("change", () => {
    $("#train-variant").disabled = value(form, "mode") !== "single"; // a shared network has its own
  });
  $("#train-variant").disabled = true;
  $("#train-budget").addEventListener("change", () => {
    const secondsBudget = value(form, "budget") === "seconds";
    $("#budget-label").textContent = secondsBudget ? "Seconds" : "Steps";
    const last = trainPlan.last;
    $("#train-budget-value").value = secondsBudget && last ? Math.round(last.seconds - last.setup_seconds) : "";
  });
  $("[data-tab=train]").addEventListener("click", updateEstimate);
}

setupTrainForm();
