// Panel 10, Runs side by side: every run under runs/ (by name), the chosen ones' train and val loss curves on one
// chart (log scale, x in steps or tokens), the settings in which they differ, and how many toy facts each toy run's
// best checkpoint knows. A run started from the Train panel appears here, chosen, and its curve grows as it trains.
import { getJSON, postJSON } from "../api.js";
import { $, el, guarded, svg } from "../dom.js";
import { state } from "../state.js";

export const section = "#runs-section";

const COLOURS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#5c940d", "#862e9c"];
const FIRST_CHOSEN = 4;             // runs drawn when the page opens (the newest page runs, else the first listed)
const FOLLOW_MS = 2000;             // while a run trains, the chart is asked again this often

export async function start() {
  state.runs = { listed: [], chosen: new Set(), seen: new Set(), compared: null, asking: null, again: false };
  $("#runs-log").addEventListener("change", draw);
  for (const radio of document.querySelectorAll("input[name=runs-x]")) radio.addEventListener("change", draw);
  document.addEventListener("runchange", () => guarded(section, refresh));      // a run started, saved or ended
  await refresh();
}

// The list as the server has it now; a run not seen before is chosen (the variant just started, say).
async function refresh() {
  const runs = state.runs;
  const { runs: listed } = await getJSON("/api/runs");
  const fresh = listed.filter((r) => !runs.seen.has(r.run));
  if (!runs.seen.size) {
    const page = listed.filter((r) => r.run.startsWith("playground/"));
    for (const r of (page.length ? page : listed).slice(0, FIRST_CHOSEN)) runs.chosen.add(r.run);
  } else {
    for (const r of fresh) runs.chosen.add(r.run);
  }
  for (const r of listed) runs.seen.add(r.run);
  runs.listed = listed;
  for (const name of [...runs.chosen]) if (!listed.some((r) => r.run === name)) runs.chosen.delete(name);
  drawList();
  await compare();
}

function colourOf(name) {
  return COLOURS[state.runs.listed.findIndex((r) => r.run === name) % COLOURS.length];
}

function drawList() {
  const runs = state.runs;
  $("#runs-list").replaceChildren(...runs.listed.map((r) => {
    const box = el("input", { type: "checkbox", value: r.run });
    box.checked = runs.chosen.has(r.run);
    box.addEventListener("change", () => {
      if (box.checked) runs.chosen.add(r.run); else runs.chosen.delete(r.run);
      guarded(section, compare);
    });
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = colourOf(r.run);
    const about = r.problem ? r.problem : `${r.positional} positions · ${r.tokenizer} tokens · step ${r.step} of ` +
      `${r.max_iters}` + (r.training ? " · training now" : "");
    return el("label", { class: "run-choice" }, [box, swatch, el("b", {}, r.run), el("span", { class: "muted" },
      ` ${about}`)]);
  }));
  if (!runs.listed.length) {
    $("#runs-list").replaceChildren(el("p", { class: "muted" }, "No runs yet: train one in the Train panel above " +
      "(or with train.py into the runs folder)."));
  }
}

// The chosen runs' curves and settings; one request at a time (a click during one asks again when it ends).
async function compare() {
  const runs = state.runs;
  if (runs.asking) { runs.again = true; return; }
  const names = runs.listed.map((r) => r.run).filter((name) => runs.chosen.has(name));
  try {
    runs.asking = names.length ? postJSON("/api/runs/compare", { runs: names }) : null;
    runs.compared = names.length ? await runs.asking : { runs: [], differing: [] };
  } finally {
    runs.asking = null;
  }
  if (runs.again) { runs.again = false; return compare(); }
  draw();
  $("#runs-section").dataset.drawn = names.join(",");          // what the chart shows now (a test waits for it)
  clearTimeout(runs.timer);
  if (state.training && state.training.state === "training") {
    runs.timer = setTimeout(() => guarded(section, refresh), FOLLOW_MS);
  }
}

function draw() {
  drawChart();
  drawTable();
}

const fmt = (v) => (v >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : v >= 1e3 ? `${+(v / 1e3).toPrecision(3)}k` : `${v}`);

function drawChart() {
  const chart = $("#runs-chart");
  const W = 760, H = 300, left = 48, right = 14, top = 22, bottom = 36;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const log = $("#runs-log").checked;
  const tokens = document.querySelector("input[name=runs-x]:checked").value === "tokens";
  const runs = (state.runs.compared ? state.runs.compared.runs : []).map((r) => {
    const scale = tokens ? r.tokens_per_step : 1;
    const at = (points) => points.map(([step, loss]) => [step * scale, loss]);
    return { ...r, train: at(r.train), val: at(r.val) };
  });
  const points = runs.flatMap((r) => [...r.train, ...r.val]);
  if (!points.length) {
    chart.replaceChildren(svg("text", { x: left, y: H / 2 }, "choose runs above: their loss curves appear here"));
    return;
  }
  const maxX = Math.max(...points.map((p) => p[0]), 1);
  const ys = points.map((p) => p[1]).filter((v) => !log || v > 0);
  const f = log ? Math.log10 : (v) => v;
  let lo = f(Math.min(...ys)), hi = f(Math.max(...ys));      // the losses' own range: differences show
  if (hi - lo < 1e-9) hi = lo + 1;
  [lo, hi] = [lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo)];
  const x = (v) => left + (W - left - right) * v / maxX;
  const y = (v) => top + (H - top - bottom) * (1 - (f(v) - lo) / (hi - lo));
  const children = [svg("line", { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: "axis" }),
    svg("line", { x1: left, y1: top, x2: left, y2: H - bottom, class: "axis" })];
  for (let i = 0; i <= 4; i++) {                                   // five loss ticks, evenly spaced on the scale
    const v = log ? 10 ** (lo + (hi - lo) * i / 4) : lo + (hi - lo) * i / 4;
    children.push(svg("line", { x1: left, y1: y(v), x2: W - right, y2: y(v), class: "grid-line" }),
      svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toPrecision(log ? 2 : 3)));
  }
  for (let i = 0; i <= 4; i++) {
    const v = maxX * i / 4;
    children.push(svg("text", { x: x(v), y: H - bottom + 16, "text-anchor": "middle" }, fmt(Math.round(v))));
  }
  children.push(svg("text", { x: (left + W - right) / 2, y: H - 3, "text-anchor": "middle" },
    tokens ? "training tokens" : "steps"),
  svg("text", { x: W - right, y: top - 8, "text-anchor": "end" },
    `loss${log ? " (log scale)" : ""}: train (line) · val (dashed, dots)`));
  const line = (pts) => pts.filter((p) => !log || p[1] > 0).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
    .join(" ");
  for (const r of runs) {
    const colour = colourOf(r.run);
    const group = svg("g", { "data-run": r.run });
    if (r.train.length) group.append(svg("polyline", { class: "train-line", stroke: colour, points: line(r.train) }));
    if (r.val.length) group.append(svg("polyline", { class: "val-line", stroke: colour, points: line(r.val) }));
    for (const [step, loss] of r.val) {
      if (!log || loss > 0) group.append(svg("circle", { class: "val-dot", fill: colour, cx: x(step), cy: y(loss), r: 3 }));
    }
    children.push(group);
  }
  chart.replaceChildren(...children);
}

function factsText(facts) {
  if (facts === null) return "not a toy run";
  if (facts.problem) return facts.problem;
  return `${facts.correct} of ${facts.total} (${Math.round(100 * facts.correct / facts.total)}%) at step ${facts.step}`;
}

const shown = (value) => (typeof value === "string" ? value : JSON.stringify(value));

function drawTable() {
  const compared = state.runs.compared || { runs: [], differing: [] };
  const runs = compared.runs;
  const note = $("#runs-note");
  note.textContent = runs.length < 2 ? "Choose two runs or more to see the settings in which they differ." :
    compared.differing.length ? `Only the settings that differ are listed (${compared.differing.length}).` :
    "These runs have the same settings.";
  if (!runs.length) { $("#runs-table").replaceChildren(); return; }
  const head = el("tr", {}, [el("th", {}, ""), ...runs.map((r) => {
    const th = el("th", {}, r.run);
    th.style.color = colourOf(r.run);
    return th;
  })]);
  const best = (r) => (r.val.length ? Math.min(...r.val.map((p) => p[1])).toFixed(4) : "not evaluated yet");
  const last = (r) => (r.train.length ? r.train[r.train.length - 1][0] : 0);
  const rows = [["last step", last], ["best val loss", best], ["toy facts known (best.pt)", (r) => factsText(r.facts)],
    ...compared.differing.map((key) => [key, (r) => (r.config ? shown(r.config[key]) : "its config.yaml is unreadable")])];
  $("#runs-table").replaceChildren(head, ...rows.map(([name, value], i) =>
    el("tr", { class: i < 3 ? "summary" : "differs" }, [el("td", {}, name),
      ...runs.map((r) => el("td", { "data-run": r.run }, String(value(r))))])));
}
