// Panel 9, Train: a fresh model trained in the background from the page (the real train.py), its loss curve, the
// probe questions' answers at each checkpoint, Stop / Resume, "Show this model in every view", and one sentence's
// attention at every checkpoint behind a step slider.
import { getJSON, postJSON } from "../api.js";
import { $, el, guarded, svg } from "../dom.js";
import { headGrid } from "../heatmap.js";
import { state } from "../state.js";

export const section = "#train-section";

// each number the panel offers, and its input; ranges and starting values come from GET /api/limits
const KNOBS = { n_layer: "#train-layers", n_head: "#train-heads", n_embd: "#train-width", max_iters: "#train-steps",
  lr: "#train-lr" };

export async function start() {
  const limits = state.limits.train;
  for (const [name, id] of Object.entries(KNOBS)) {
    const { min, above, max, default: value } = limits[name];
    Object.assign($(id), { min: min ?? above, max, value });
  }
  $("#train-positions").replaceChildren(...limits.positional.choices.map((c) => el("option", { value: c }, c)));
  $("#train-positions").value = limits.positional.default;
  for (const radio of document.querySelectorAll("input[name=train-tokenizer]")) {
    radio.checked = radio.value === limits.tokenizer.default;
  }
  const text = limits.text;
  $("#train-text").placeholder = `Paste at least ${text.min_chars.toLocaleString("en")} characters ` +
    `(at most ${text.max_bytes / 1024} KiB) to train on; with words, at least ` +
    `${text.min_tokens.word.toLocaleString("en")} words, digits and marks (a word model's vocabulary is the ` +
    "words of this text)";
  for (const radio of document.querySelectorAll("input[name=corpus]")) {
    radio.addEventListener("change", () => { $("#train-text").hidden = radio.value !== "text" || !radio.checked; });
  }
  $("#train-btn").addEventListener("click", () => act("/api/train", knobs()));
  $("#train-stop-btn").addEventListener("click", () => act("/api/train/stop", {}));
  $("#train-resume-btn").addEventListener("click", () => act("/api/train/resume", { run: state.training.run }));
  $("#train-use-btn").addEventListener("click", () => guarded(section, useTrainedModel));
  $("#history-step").addEventListener("input", drawHistory);
  show(await getJSON("/api/train"));
  if (state.training.state === "training") follow();
}

function knobs() {
  const corpus = document.querySelector("input[name=corpus]:checked").value;
  const body = { corpus, positional: $("#train-positions").value,
    tokenizer: document.querySelector("input[name=train-tokenizer]:checked").value };
  for (const [name, id] of Object.entries(KNOBS)) body[name] = Number($(id).value);
  if (corpus === "text") body.text = $("#train-text").value;
  return body;
}

async function act(path, body) {
  try {
    await postJSON(path, body);
    follow();
  } catch (error) {
    $("#train-status").textContent = error.message;
  }
}

// the run's status as Server-Sent Events, each time it changes, until the run ends. Asked while a stream is still
// open (the last run's, about to end), the next stream starts when that one ends, so a resumed run is followed.
function follow() {
  const open = state.trainEvents;
  if (open && open.readyState !== EventSource.CLOSED) {
    open.followAgain = true;
    return;
  }
  const events = new EventSource("/api/train/events");
  state.trainEvents = events;
  events.addEventListener("status", (event) => guarded(section, () => show(JSON.parse(event.data))));
  events.onerror = () => {                         // the stream ends with the run; the last status stays shown
    events.close();
    if (events.followAgain) follow();
  };
}

function show(status) {
  const before = state.training;
  state.training = status;
  if (before && (before.state !== status.state || before.checkpoint !== status.checkpoint)) {
    document.dispatchEvent(new CustomEvent("runchange"));           // the model picker lists it again
  }
  const training = status.state === "training";
  $("#train-btn").disabled = training;
  $("#train-stop-btn").disabled = !training;
  $("#train-resume-btn").disabled = training || status.state !== "stopped";
  $("#train-use-btn").disabled = !status.checkpoint;
  const last = status.losses && status.losses.length ? status.losses[status.losses.length - 1] : null;
  $("#train-status").textContent = status.state === "idle" ? "" :
    `run ${status.run}: ${training ? "training" : status.outcome}` +
    (last ? ` · step ${last.iter}, loss ${last.loss.toFixed(3)}` : "");
  $("#train-disk").textContent = [status.disk, status.orphan && `Run ${status.orphan} is still training in `
    + "another process: stop it there before starting one here."].filter(Boolean).join(" ");
  drawLoss(status.losses || [], status.evals || []);
  drawProbes(status.probes || []);
  const steps = status.attention_steps || [];
  if (steps.length && steps.length !== (state.history ? state.history.snapshots.length : 0)) {
    guarded(section, loadHistory);
  }
}

async function loadHistory() {
  const slider = $("#history-step");
  const atEnd = !state.history || Number(slider.value) === state.history.snapshots.length - 1;
  state.history = await getJSON("/api/train/attention");
  const n = state.history.snapshots.length;
  $("#history").hidden = n === 0;
  $("#history-sentence").textContent = `"${state.history.sentence}"`;
  slider.max = Math.max(0, n - 1);
  if (atEnd) slider.value = slider.max;
  drawHistory();
}

function drawHistory() {
  const snapshot = state.history.snapshots[Number($("#history-step").value)];
  if (!snapshot) return;
  $("#history-label").textContent = `step ${snapshot.step}`;
  headGrid($("#history-grid"), snapshot.attention);
}

function drawLoss(losses, evals) {
  const chart = $("#loss-chart");
  const W = 460, H = 220, left = 40, bottom = 24, top = 10, right = 10;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const points = [...losses.map((m) => [m.iter, m.loss]), ...evals.map((e) => [e.iter, e.val])];
  if (!points.length) { chart.replaceChildren(svg("text", { x: left, y: H / 2 }, "the loss appears here")); return; }
  const maxX = Math.max(...points.map((p) => p[0])), maxY = Math.max(...points.map((p) => p[1]));
  const x = (v) => left + (W - left - right) * v / Math.max(maxX, 1);
  const y = (v) => top + (H - top - bottom) * (1 - v / Math.max(maxY, 1e-9));
  const children = [
    svg("line", { x1: left, y1: y(0), x2: W - right, y2: y(0), stroke: "#ccd" }),
    svg("line", { x1: left, y1: top, x2: left, y2: y(0), stroke: "#ccd" }),
    svg("text", { x: 4, y: top + 10 }, maxY.toFixed(1)), svg("text", { x: 4, y: y(0) }, "0"),
    svg("text", { x: W - right - 60, y: H - 6 }, `step ${maxX}`),
    svg("text", { x: left + 6, y: top + 12 }, "train loss (line) · val loss (dots)"),
  ];
  if (losses.length) {
    children.push(svg("polyline", { class: "train-line",
      points: losses.map((m) => `${x(m.iter).toFixed(1)},${y(m.loss).toFixed(1)}`).join(" ") }));
  }
  for (const e of evals) children.push(svg("circle", { class: "val-dot", cx: x(e.iter), cy: y(e.val), r: 3 }));
  chart.replaceChildren(...children);
}

function drawProbes(probes) {
  const head = el("tr", {}, ["question", "the model answers", "P(right answer)"].map((t) => el("th", {}, t)));
  const rows = probes.map((p) => {
    const answer = el("td", { class: "answer" + (p.answer.startsWith(p.expected) ? " right" : "") }, p.shown_answer);
    const prob = el("td");
    if (p.p_expected !== null) {
      const fill = el("div");
      fill.style.width = `${(100 * p.p_expected).toFixed(1)}%`;
      prob.append(el("div", { class: "meter" }, [fill]), ` ${p.p_expected.toFixed(3)} at step ${p.step}`);
      prob.dataset.p = p.p_expected;
    }
    return el("tr", {}, [el("td", {}, `${p.prompt} → ${p.shown_expected}?`), answer, prob]);
  });
  $("#probes").replaceChildren(head, ...rows);
}

// Every view switches to the run's best checkpoint: main.js hears "modelchange" and redraws them all.
async function useTrainedModel() {
  state.card = await postJSON("/api/checkpoint", { run: state.training.run, which: "best" });
  document.dispatchEvent(new CustomEvent("modelchange"));
}
