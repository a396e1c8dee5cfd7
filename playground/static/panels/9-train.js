// Panel 9, Train: a fresh model trained in the background from the page (the real train.py), its loss curve with
// the random-guess line, the time it took and the time left, a table of the probe questions' answers from step 0
// on, Stop / Resume, "Show this model in every view" and "Back to the start-up model", and one sentence's
// attention at every checkpoint behind a step slider.
import { getJSON, postJSON } from "../api.js";
import { $, el, guarded, svg } from "../dom.js";
import { colourScale, headGrid } from "../heatmap.js";
import { state } from "../state.js";

export const section = "#train-section";

// each number the panel offers, and its input; ranges and starting values come from GET /api/limits
const KNOBS = { n_layer: "#train-layers", n_head: "#train-heads", n_embd: "#train-width", max_iters: "#train-steps",
  lr: "#train-lr", seed: "#train-seed" };

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
  $("#startup-btn").addEventListener("click", () => guarded(section, backToStartup));
  // the same run again with other positions (the server copies its settings), for the Runs panel's chart
  const others = limits.positional.choices.filter((choice) => choice !== limits.positional.default);
  $("#train-variant-positional").replaceChildren(...[...others, limits.positional.default].map((choice) =>
    el("option", { value: choice }, choice)));
  $("#train-variant-btn").addEventListener("click", () => act("/api/train/variant",
    { run: state.training.run, positional: $("#train-variant-positional").value }));
  $("#history-step").addEventListener("input", drawHistory);
  $("#history-grid").after(colourScale("0", "1", "attention weight (each square: rows looking, columns looked at)",
    { masked: true }));
  show(await getJSON("/api/train"));
  if (state.training.state === "training") follow();
}

// The Train panel set to the shape of `card`'s model (a model card), with positions `positional`, and started: the
// Positions panel's "train the same model without positions". Returns a line saying what was started.
export async function trainLike(card, positional) {
  const m = card.model;
  const limits = state.limits.train;
  const within = (name, value) => Math.min(Math.max(value, limits[name].min ?? limits[name].above), limits[name].max);
  const set = { n_layer: m.n_layer, n_head: m.n_head, n_embd: m.n_embd, max_iters: card.train.max_iters,
    lr: card.train.lr, seed: card.train.seed };
  for (const [name, value] of Object.entries(set)) $(KNOBS[name]).value = within(name, value);
  $("#train-positions").value = positional;
  if (limits.tokenizer.choices.includes(card.tokenizer.kind)) {
    document.querySelector(`input[name=train-tokenizer][value=${card.tokenizer.kind}]`).checked = true;
  }
  document.querySelector("input[name=corpus][value=toy]").checked = true;
  $("#train-text").hidden = true;
  const started = await act("/api/train", knobs());
  $(section).scrollIntoView({ behavior: "smooth" });
  return started ? `training run ${started.run} in panel 9 (${m.n_layer} blocks × ${m.n_head} heads, width ` +
    `${m.n_embd}, no positions): when it has a checkpoint, "Show this model in every view" there, and this panel ` +
    "asks it the same two questions" : $("#train-status").textContent;
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
    const answer = await postJSON(path, body);
    follow();
    return answer;
  } catch (error) {
    $("#train-status").textContent = error.message;
    return null;
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
  $("#train-variant-btn").disabled = training || status.state === "idle";
  const last = status.losses && status.losses.length ? status.losses[status.losses.length - 1] : null;
  $("#train-status").textContent = status.state === "idle" ? "" :
    `run ${status.run}: ${training ? "training" : status.outcome}` +
    (last ? ` · step ${last.iter}, loss ${last.loss.toFixed(3)}` : "");
  $("#train-disk").textContent = [status.disk, status.orphan && `Run ${status.orphan} is still training in `
    + "another process: stop it there before starting one here."].filter(Boolean).join(" ");
  $("#train-clock").textContent = status.state === "idle" ? "" : clock(status, last);
  drawLoss(status.losses || [], status.evals || [], status.vocab_size);
  drawProbes(status.answers || []);
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

// "3 min 5 s": a duration for people
function duration(seconds) {
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

// How long the run has taken, and at the pace so far how long it has left.
function clock(status, last) {
  const done = last ? `step ${last.iter} of ${status.max_iters}` : `starting (${status.max_iters} steps)`;
  const left = status.state === "training" ? (status.left_s === null ? "; time left: measured after a few steps" :
    `; about ${duration(status.left_s)} left at this pace`) : "";
  return `${done}; ${duration(status.elapsed_s)} since it started${left}`;
}

// round ticks for an axis from 0 to `top`
function ticks(top) {
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].find((s) => top / s <= 6) || top / 5;
  return [...Array(Math.floor(top / step) + 1).keys()].map((k) => k * step);
}

// The losses (nats per token) against the step, on axes with ticks, and the loss of a uniform guess over the
// vocabulary, ln V: a model below that line has learned something.
function drawLoss(losses, evals, vocabSize) {
  const chart = $("#loss-chart");
  const W = 460, H = 220, left = 44, bottom = 34, top = 10, right = 14;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const guess = vocabSize ? Math.log(vocabSize) : null;
  $("#loss-note").textContent = guess === null ? "" : `A model that guessed uniformly among its ${vocabSize} ` +
    `tokens would score ln ${vocabSize} = ${guess.toFixed(2)} nats per token (the dashed line): a fresh model ` +
    "starts near it, and every bit below it was learned.";
  const points = [...losses.map((m) => [m.iter, m.loss]), ...evals.map((e) => [e.iter, e.val])];
  if (!points.length) { chart.replaceChildren(svg("text", { x: left, y: H / 2 }, "the loss appears here")); return; }
  const maxX = Math.max(...points.map((p) => p[0])), maxY = Math.max(...points.map((p) => p[1]), guess ?? 0) * 1.05;
  const x = (v) => left + (W - left - right) * v / Math.max(maxX, 1);
  const y = (v) => top + (H - top - bottom) * (1 - v / Math.max(maxY, 1e-9));
  const children = [
    svg("line", { x1: left, y1: y(0), x2: W - right, y2: y(0), stroke: "#99a" }),
    svg("line", { x1: left, y1: top, x2: left, y2: y(0), stroke: "#99a" }),
    ...ticks(maxY).flatMap((v) => [
      svg("line", { x1: left - 3, y1: y(v), x2: W - right, y2: y(v), class: "grid-line" }),
      svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "y-tick" }, v.toFixed(v < 1 && v > 0 ? 1 : 0)),
    ]),
    ...ticks(maxX).map((v) => svg("text", { x: x(v), y: y(0) + 13, "text-anchor": "middle", class: "x-tick" }, String(v))),
    svg("text", { class: "axis-title", x: left + (W - left - right) / 2, y: H - 3, "text-anchor": "middle" }, "step"),
    svg("text", { class: "axis-title", x: 0, y: 0, "text-anchor": "middle",
      transform: `translate(11, ${top + (H - top - bottom) / 2}) rotate(-90)` }, "loss (nats per token)"),
  ];
  if (guess !== null) {
    children.push(svg("line", { class: "guess-line", x1: left, y1: y(guess), x2: W - right, y2: y(guess),
      "data-loss": guess }));
  }
  if (losses.length) {
    children.push(svg("polyline", { class: "train-line",
      points: losses.map((m) => `${x(m.iter).toFixed(1)},${y(m.loss).toFixed(1)}`).join(" ") }));
  }
  for (const e of evals) children.push(svg("circle", { class: "val-dot", cx: x(e.iter), cy: y(e.val), r: 3 }));
  chart.replaceChildren(...children);
}

// One row per probed step (step 0, the untrained model, first; the newest last, marked): each question's greedy
// answer (green where right) and the probability of the right answer.
function drawProbes(answers) {
  if (!answers.length) { $("#probes").replaceChildren(); return; }
  const questions = answers[0].probes;
  const head = el("tr", {}, [el("th", {}, "step"), ...questions.map((q) =>
    el("th", { colspan: 2 }, `${q.prompt} → ${q.shown_expected}?`))]);
  const sub = el("tr", {}, [el("th"), ...questions.flatMap(() => [el("th", {}, "answer"), el("th", {}, "P(right)")])]);
  const rows = answers.map(({ step, probes }, r) => el("tr", { class: r === answers.length - 1 ? "newest" : "",
    "data-step": step }, [el("td", {}, String(step)), ...probes.flatMap((p) => {
    const answer = el("td", { class: "answer" + (p.answer.startsWith(p.expected) ? " right" : "") }, p.shown_answer);
    const prob = el("td");
    if (p.p_expected !== null) {
      const fill = el("div");
      fill.style.width = `${(100 * p.p_expected).toFixed(1)}%`;
      prob.append(el("div", { class: "meter" }, [fill]), ` ${p.p_expected.toFixed(3)}`);
      prob.dataset.p = p.p_expected;
    }
    return [answer, prob];
  })]));
  $("#probes").replaceChildren(head, sub, ...rows);
}

// Every view switches to the run's best checkpoint: main.js hears "modelchange" and redraws them all.
async function useTrainedModel() {
  state.card = await postJSON("/api/checkpoint", { run: state.training.run, which: "best" });
  document.dispatchEvent(new CustomEvent("modelchange"));
}

// ... or back to the model the server started with (the server remembers the model shown, so a reload would not).
async function backToStartup() {
  state.card = await postJSON("/api/checkpoint", { run: null });
  document.dispatchEvent(new CustomEvent("modelchange"));
}
