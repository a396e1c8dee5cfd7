// Panel 4b, Inside one head: what one head of one block computes for one token, stage by stage, every number read
// off the model's own forward pass (POST /api/page's "head" on a keystroke; POST /api/head when a block, a head or
// a token is picked while the text stays): the vector entering the block, its LayerNorm, q, each visible token's k
// and v, q ⊙ k, q·k, ÷√hs, the mask, the softmax, Σ w·v, and the projection added to the stream. The page
// computes nothing here but q ⊙ k_j, to draw it (its sum is the model's own q·k_j, sent).
import { postJSON } from "../api.js";
import { $, chip, el, guarded, hideTooltip, showTooltip } from "../dom.js";
import { stripCanvas } from "../heatmap.js";
import { state } from "../state.js";

export const section = "#head-section";

// The head and token the page asks for: panel 4's enlarged head (state.selected), kept inside the model shown,
// and the token picked for this very text (null, the last token, once the text is edited or replaced).
export function choice() {
  const { n_layer: layers, n_head: heads } = state.card.model;
  if (state.selected.layer >= layers || state.selected.head >= heads) state.selected = { layer: 0, head: 0 };
  const query = state.query && state.query.text === $("#text").value ? state.query.index : null;
  return { block: state.selected.layer, head: state.selected.head, query };
}

// A head or a token picked here or in panel 4: `headChanged` redraws panel 4's enlarged head too (main.js).
export function pick({ layer = state.selected.layer, head = state.selected.head, query } = {}) {
  const headChanged = layer !== state.selected.layer || head !== state.selected.head;
  state.selected = { layer, head };
  if (query !== undefined) state.query = { text: $("#text").value, index: query };
  document.dispatchEvent(new CustomEvent("headpick", { detail: { headChanged } }));
}

export function start() {
  $("#head-block").addEventListener("change", (event) => pick({ layer: Number(event.target.value) }));
  $("#head-head").addEventListener("change", (event) => pick({ head: Number(event.target.value) }));
  const forget = () => { state.query = null; };            // another text or model: its last token again
  $("#text").addEventListener("input", forget);
  document.addEventListener("modelchange", forget);
}

// A keystroke's answer: drawn if it holds the head and token chosen now (one picked while it was on its way asks
// again).
export function show(page) {
  const now = choice();
  const { block, head, query } = page.head;
  if (block === now.block && head === now.head && (now.query === null || query === now.query)) draw(page.head);
  else return ask();
}

// The same head for another block, head or token of the text shown: one request, dropped if the text moved on.
export async function ask() {
  const text = $("#text").value;
  if (!text || !state.page) return;
  const asked = state.keystroke;
  const view = await postJSON("/api/head", { text, ...choice() });
  if (asked === state.keystroke) draw(view);
}

const fixed = (v, places = 3) => (v < 0 ? "−" : "") + Math.abs(v).toFixed(places);
const largest = (...vectors) => Math.max(1e-9, ...vectors.flat(Infinity).map(Math.abs));
const norm = (values) => Math.sqrt(values.reduce((sum, v) => sum + v * v, 0));

function options(select, count, chosen, name) {
  if (select.options.length !== count) {
    select.replaceChildren(...[...Array(count).keys()].map((i) => el("option", { value: i }, `${name} ${i}`)));
  }
  select.value = String(chosen);
}

function draw(view) {
  const { block, head, query: i, head_size: hs, tokens } = view;
  const C = view.x.length;
  const px = Math.max(1, Math.min(6, Math.floor(560 / C)));      // one vector dimension, in CSS pixels
  options($("#head-block"), view.n_layer, block, "block");
  options($("#head-head"), view.n_head, head, "head");
  $("#head-tokens").replaceChildren(...tokens.map((t, j) => {
    const c = chip(t.shown, t.id);
    c.classList.toggle("query", j === i);
    c.title = `follow the query of token ${j} (${t.shown})`;
    c.addEventListener("click", () => pick({ query: j }));
    return c;
  }));
  const me = `token ${i} (${tokens[i].shown})`;
  const strip = (name, values, scale, outlined) => vectorStrip(name, values, scale, px, outlined);
  const vector = (name, values, scale = largest(values), outlined) => el("div", { class: "vector" }, [
    strip(name, values, scale, outlined),
    el("span", { class: "muted" }, `${values.length} numbers, ‖·‖ = ${norm(values).toFixed(2)}`)]);
  const stages = $("#head-stages");
  Object.assign(stages.dataset, { block, head, query: i });
  const bias = view.bias;
  stages.replaceChildren(
    stage("x", `x: ${me} entering block ${block}`,
      "Its token's embedding plus its position, plus whatever the blocks before added to it.",
      vector("x", view.x, largest(view.x, view.after))),
    stage("normed", "LN(x): after the block's first LayerNorm",
      "Shifted to mean 0 and scaled to spread 1, then times the LayerNorm's learned gain plus its bias: what every " +
      "head of this block reads.", vector("LN(x)", view.normed)),
    stage("q", `q = ${view.rotary ? "R(p)·(" : ""}LN(x)·W_q${bias ? " + b_q" : ""}${view.rotary ? ")" : ""}: the ` +
      `query, ${hs} numbers`,
      `What ${me} is looking for: its LayerNorm'd vector times this head's own ${C}×${hs} slice of W_q.` +
      (view.rotary ? " This model has no position vector in x: q (and every k_j) is turned by angles that grow " +
        "with its position (RoPE), so q·k_j depends on how far apart the two tokens are." : ""),
      vector("q", view.q), ...(bias ? [el("span", { class: "muted" }, "b_q"), vector("b_q", bias.q)] : [])),
    stage("keys", "for every token j: k_j, q ⊙ k_j, q·k_j, ÷√hs, + mask, softmax, v_j", [
      `k_j = LN(x_j)·W_k${bias ? " + b_k" : ""} says what token j offers to be found by (its key); ` +
      `v_j = LN(x_j)·W_v${bias ? " + b_v" : ""} what it passes on when looked at (its value).`,
      "q ⊙ k_j multiplies q and k_j dimension by dimension; their sum is the score q·k_j, large when the two " +
      "point the same way.",
      `÷ √${hs} keeps the scores' spread near 1, so that the softmax does not saturate.`,
      `The mask: tokens after ${i} are the future the model must predict; their score becomes −∞ (grey).`,
      "softmax: w_j = exp(s_j) / Σ_l exp(s_l), positive weights that sum to 1: row " +
      `${i} of this head's heatmap in panel 4.`].map((line) => el("p", { class: "explain" }, line)),
    keyTable(view, strip)),
    stage("output", "o = Σ_j w_j v_j: the head's output",
      `The values of the tokens it looks at, mixed by the weights: what this head brings to ${me}.`,
      vector("o", view.output)),
    stage("concatenated", `[o_0 … o_${view.n_head - 1}]: every head of block ${block}, side by side`,
      `Each of the ${view.n_head} heads did the same with its own W_q, W_k, W_v; their outputs, placed side by ` +
      `side, make ${C} numbers again (head ${head}'s part outlined).`,
      vector("heads", view.concatenated, largest(view.concatenated), [head * hs, hs])),
    stage("projected", `× W_o${bias ? " + b_o" : ""}: what attention adds to the stream`,
      `One more ${C}×${C} matrix mixes the heads into one vector, added to ${me}'s vector.`,
      vector("attention(x)", view.projected), ...(bias ? [el("span", { class: "muted" }, "b_o"),
        vector("b_o", bias.o)] : [])),
    stage("after", "x + attention(x): the stream after attention",
      "The residual connection: attention changes the vector by adding to it, never by replacing it. The " +
      "feed-forward network (panel 6) reads this.",
      vector("x + attention(x)", view.after, largest(view.x, view.after))),
  );
}

// One stage: what it computes (a formula), one plain sentence (or several lines), and its numbers.
function stage(name, formula, words, ...body) {
  const text = typeof words === "string" ? [el("p", { class: "explain" }, words)] : words;
  return el("div", { class: "stage", "data-stage": name }, [
    el("div", { class: "stage-text" }, [el("code", {}, formula), ...text]),
    el("div", { class: "stage-body" }, body)]);
}

// A vector as a colour strip (blue < 0 < red, ±scale the strongest colour); hover a cell for its value. `outlined`:
// [first dimension, count] framed.
function vectorStrip(name, values, scale, px, outlined) {
  const canvas = stripCanvas(values, scale, (event, d) => (event ? showTooltip(event,
    `${name}[${d}] = ${fixed(values[d], 4)}  (colours: ±${scale.toFixed(2)})`) : hideTooltip()));
  canvas.style.width = `${values.length * px}px`;
  canvas.dataset.values = values.length;
  const box = el("span", { class: "strip-box" }, [canvas]);
  if (outlined) {
    const frame = el("span", { class: "strip-frame" });
    Object.assign(frame.style, { left: `${outlined[0] * px}px`, width: `${outlined[1] * px}px` });
    box.append(frame);
  }
  return box;
}

const FUTURE_ROWS = 16;       // the masked tokens after the query listed one by one (a long text's rest: one row)

// One row per token: its key, q ⊙ key, the score before and after ÷√hs, the mask, the weight and its value. The
// future rows (after the query) are masked: −∞, weight 0.
function keyTable(view, strip) {
  const { query: i, head_size: hs, tokens, q, k, v, dots, scores, weights, bias } = view;
  const products = k.map((key) => key.map((x, d) => q[d] * x));              // q ⊙ k_j, drawn only
  const [kScale, pScale, vScale] = [largest(q, k), largest(products), largest(v)];
  const strongest = weights.indexOf(Math.max(...weights));
  const head = el("tr", {}, ["token j", "k_j", "q ⊙ k_j", "q·k_j", `s_j = ÷ √${hs}`, "+ mask", "w_j = softmax",
    "v_j"].map((title) => el("th", {}, title)));
  const qRow = el("tr", { class: "query-row" }, [el("th", {}, "q"), el("td", {}, [strip("q", q, kScale)]),
    el("td", { class: "muted", colspan: 5 }, `the query of token ${i}, beside the keys it is compared with`),
    el("td")]);
  const future = tokens.length - 1 - i;
  const rows = tokens.slice(0, i + 1 + Math.min(future, FUTURE_ROWS)).map((t, j) => {
    if (j > i) {
      return el("tr", { class: "future", "data-j": j }, [el("th", {}, t.shown), el("td"), el("td"), el("td"),
        el("td"), el("td", { class: "number" }, "−∞"), el("td", { class: "weight", "data-w": 0 }, "0"), el("td")]);
    }
    const bar = el("span", { class: "bar" });
    bar.style.width = `${Math.round(60 * weights[j])}px`;
    return el("tr", { class: j === strongest ? "key strongest" : "key", "data-j": j }, [
      el("th", {}, t.shown),
      el("td", {}, [strip(`k_${j}`, k[j], kScale)]),
      el("td", {}, [strip(`q ⊙ k_${j}`, products[j], pScale)]),
      el("td", { class: "number" }, fixed(dots[j])),
      el("td", { class: "number" }, fixed(scores[j])),
      el("td", { class: "number" }, "+0"),
      el("td", { class: "weight", "data-w": weights[j] }, [bar, ` ${weights[j].toFixed(3)}`]),
      el("td", {}, [strip(`v_${j}`, v[j], vScale)])]);
  });
  const biasNote = "b_k and b_v, added to every key and value (b_k adds the same q·b_k to every score, which the " +
    "softmax ignores)";
  const biasRow = bias ? [el("tr", { class: "query-row" }, [el("th", {}, "bias"),
    el("td", {}, [strip("b_k", bias.k, kScale)]), el("td", { class: "muted", colspan: 5 }, biasNote),
    el("td", {}, [strip("b_v", bias.v, vScale)])])] : [];
  if (future > FUTURE_ROWS) {
    rows.push(el("tr", { class: "future" }, [el("th", {}, "…"), el("td", { colspan: 7 },
      `and ${future - FUTURE_ROWS} more tokens of the future, masked the same way (−∞, weight 0)`)]));
  }
  return el("div", { class: "keys-box" }, [el("table", { class: "keys" }, [head, qRow, ...biasRow, ...rows])]);
}
