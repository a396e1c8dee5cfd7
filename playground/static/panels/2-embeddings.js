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

// A scatter plot: points (n × 2) scaled into a W × H box, a dot per point (dot(i) gives its attributes), and a
// label beside each dot where it overlaps no label already placed (measured as drawn), in the order of `first`
// (the points that must be read first: the picked token and its neighbours); a dot left without a label names
// itself on hover.
function scatter(map, points, W, H, names, dot, first = []) {
  const pad = 24;
  map.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const at = points.map(([x, y]) => [pad + (W - 2 * pad) * (x - x0) / Math.max(x1 - x0, 1e-9),
    pad + (H - 2 * pad) * (1 - (y - y0) / Math.max(y1 - y0, 1e-9))]);
  const dots = at.map(([x, y], i) => {
    const node = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3, ...dot(i) });
    node.append(svg("title", {}, names[i]));
    return node;
  });
  map.replaceChildren(...dots);
  const placed = [], labels = [];
  const overlaps = (b) => b.x < 0 || b.x + b.width > W || placed.some((p) =>
    b.x < p.x + p.width && p.x < b.x + b.width && b.y < p.y + p.height && p.y < b.y + b.height);
  for (const i of [...new Set([...first, ...points.keys()])]) {
    const [x, y] = at[i];
    const label = svg("text", { x: (x + 5).toFixed(1), y: (y + 4).toFixed(1), ...dot(i), "data-label": i }, names[i]);
    map.append(label);
    let box = label.getBBox();                                   // right of the dot, else left of it, else none
    if (overlaps(box)) {
      label.setAttribute("x", (x - 5 - box.width).toFixed(1));
      box = label.getBBox();
    }
    if (overlaps(box)) {
      label.remove();
      continue;
    }
    placed.push(box);
    labels.push(label);
  }
  return [...dots, ...labels];
}

function draw(view) {
  const near = (view.neighbours || []).map((n) => n.id);
  const typed = new Set(view.typed);
  const point = new Map(view.ids.map((id, i) => [id, i]));     // point i is token id view.ids[i]
  const first = (view.token === null ? [] : [view.token, ...near]).map((id) => point.get(id))
    .filter((i) => i !== undefined);
  const kinds = view.kinds.flatMap((k, i) => (k ? [i] : []));           // the toy corpus's words, labelled early
  const nodes = scatter($("#embedding-map"), view.points, 560, 320, view.shown, (i) => {
    const id = view.ids[i];
    const role = id === view.token ? "picked" : near.includes(id) ? "near" : "";
    return { class: [view.kinds[i], role, typed.has(id) ? "typed" : ""].filter(Boolean).join(" "),
      "data-id": id, "data-kind": view.kinds[i] };
  }, [...first, ...kinds]);
  for (const node of nodes) {
    node.addEventListener("click", () => guarded(section, () => load(Number(node.dataset.id))));
  }
  $("#embedding-legend").hidden = !view.kinds.some(Boolean);     // a word-level vocabulary: its words coloured
  const words = view.words_map;
  $("#words-map").hidden = !words;
  $("#words-legend").hidden = !words;
  if (words) {
    scatter($("#words-map"), words.points, 560, 220, words.words, (i) => ({ class: words.kinds[i] }));
    const n = words.words.length;
    $("#words-measured").textContent = `In the full vectors, ${words.same_kind_nearest} of these ${n} words have ` +
      `a word of their own kind as nearest neighbour (by chance about ${Math.round(words.chance * n)} would); ` +
      `this map's two directions hold ${(100 * words.explained).toFixed(0)}% of their variance.`;
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
