// Panel 2, Embeddings: the embedding table flattened to 2-D, a token's nearest neighbours, one word's cosine with
// a word used alike and with one used otherwise, and the toy corpus's words in context. It asks once (listing the
// first word's neighbours where it is one token), and again on a click; the map draws the first 1,000 token ids,
// the typed text's tokens as they were when it asked (outlined), and the picked token's neighbours.
import { postJSON } from "../api.js";
import { $, el, guarded, svg } from "../dom.js";
import { state } from "../state.js";

export const section = "#embeddings-section";
const WORDS = { word_a: "#word-a", word_b: "#word-b", word_c: "#word-c" };

export function start() {
  for (const id of Object.values(WORDS)) {
    $(id).addEventListener("change", () => guarded(section, () => load(state.pickedToken)));
  }
  return loadFirst();
}

// The map with the first word's neighbours listed, where the vocabulary holds that word as one token (" dog" in a
// word-level model; a char model has no such token, so nothing is picked until a click).
export async function loadFirst() {
  const view = await load(null);
  const first = view.words.ids ? view.words.ids.a : null;
  if (first !== null) await load(first);
}

export async function load(token) {
  state.pickedToken = token;
  const body = { token };
  const text = $("#text").value;
  if (text.trim()) body.text = text;
  for (const [name, id] of Object.entries(WORDS)) body[name] = $(id).value.trim() || $(id).defaultValue;
  const view = await postJSON("/api/embeddings", body);
  draw(view);
  return view;
}

// points (n × 2) scaled into a W × H box; label(i, x, y) makes the node for point i.
function scatter(map, points, W, H, label) {
  const pad = 24;
  map.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  map.replaceChildren(...points.map(([x, y], i) => label(i,
    (pad + (W - 2 * pad) * (x - x0) / Math.max(x1 - x0, 1e-9)).toFixed(1),
    (pad + (H - 2 * pad) * (1 - (y - y0) / Math.max(y1 - y0, 1e-9))).toFixed(1))));
}

function draw(view) {
  const near = new Set((view.neighbours || []).map((n) => n.id));
  const typed = new Set(view.typed);
  scatter($("#embedding-map"), view.points, 560, 320, (i, x, y) => {
    const id = view.ids[i];                                  // point i is token id view.ids[i]
    const role = id === view.token ? "picked" : near.has(id) ? "near" : "";
    const label = svg("text", { x, y, class: `${view.kinds[i]} ${role} ${typed.has(id) ? "typed" : ""}`.trim(),
      "data-id": id, "data-kind": view.kinds[i] }, view.shown[i]);
    label.addEventListener("click", () => guarded(section, () => load(id)));
    return label;
  });
  $("#embedding-legend").hidden = !view.kinds.some(Boolean);     // a word-level vocabulary: its words coloured
  const words = view.words_map;
  $("#words-map").hidden = !words;
  if (words) {
    scatter($("#words-map"), words.points, 560, 220,
      (i, x, y) => svg("text", { x, y, class: words.kinds[i] }, words.words[i]));
  }
  const drawn = view.points.length < view.vocab_size ? `${view.points.length} of ${view.vocab_size} tokens (ids ` +
    `0 to ${Math.min(view.vocab_size, 1000) - 1}, the text's own, outlined, and the picked one's neighbours); ` +
    `these two directions hold ${(100 * view.explained).toFixed(0)}% of the first 1,000 rows' variance.` :
    `all ${view.vocab_size} tokens; these two directions hold ${(100 * view.explained).toFixed(0)}% of the ` +
    "table's variance.";
  $("#embedding-explained").textContent = drawn;
  const picked = view.token === null ? "" : `nearest to ${view.shown[view.ids.indexOf(view.token)]}: `;
  $("#neighbours-title").textContent = picked;
  $("#neighbours").replaceChildren(...(view.neighbours || []).map((n) =>
    el("li", {}, `${n.shown}  cos ${n.cosine.toFixed(3)}`)));
  $("#word-cosine").replaceChildren(...wordCosines(view.words));
}

// a's cosine with b and with c, in the table and in context, as lines of text
function wordCosines(w) {
  const [a, b, c] = [w.spelled.a, w.spelled.b, w.spelled.c];
  const table = w.tokenizer === "word" ? `in the embedding table (their own rows)` :
    `by spelling (the mean of their ${w.tokenizer === "char" ? "letters'" : "tokens'"} rows)`;
  const lines = [
    el("span", { class: "table-cosine" }, `${table}: cos(${a}, ${b}) = ${w.spelling.toFixed(3)}, ` +
      `cos(${a}, ${c}) = ${w.spelling_c.toFixed(3)}`),
    el("br"),
    el("span", {}, `in context (the last layer's vector after "${w.frame.replace("{}", "…")}"): ` +
      `${w.context.toFixed(3)} and ${w.context_c.toFixed(3)}`),
  ];
  if (w.unknown.length) {
    lines.push(el("br"), el("span", { class: "unknown" }, `not in the vocabulary, read as <unk>: ${w.unknown.join(", ")}`));
  }
  return lines;
}
