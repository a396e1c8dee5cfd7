// Panel 2, Embeddings: the embedding table flattened to 2-D, a token's nearest neighbours, two words' cosine, and
// the toy corpus's words in context. It does not depend on the typed text: it asks once, and again on a click.
import { postJSON } from "../api.js";
import { $, el, guarded, svg } from "../dom.js";
import { state } from "../state.js";

export const section = "#embeddings-section";

export function start() {
  for (const id of ["#word-a", "#word-b"]) {
    $(id).addEventListener("change", () => guarded(section, () => load(state.pickedToken)));
  }
  return load(null);
}

export async function load(token) {
  state.pickedToken = token;
  const view = await postJSON("/api/embeddings",
    { token, word_a: $("#word-a").value || "dog", word_b: $("#word-b").value || "cat" });
  draw(view);
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
  scatter($("#embedding-map"), view.points, 560, 320, (id, x, y) => {
    const kind = id === view.token ? "picked" : near.has(id) ? "near" : "";
    const label = svg("text", { x, y, class: kind, "data-id": id }, view.shown[id]);
    label.addEventListener("click", () => guarded(section, () => load(id)));
    return label;
  });
  const words = view.words_map;
  $("#words-map").hidden = !words;
  if (words) {
    scatter($("#words-map"), words.points, 560, 220,
      (i, x, y) => svg("text", { x, y, class: words.kinds[i] }, words.words[i]));
  }
  $("#embedding-explained").textContent = `${view.points.length} of ${view.vocab_size} tokens; these two ` +
    `directions hold ${(100 * view.explained).toFixed(0)}% of the table's variance.`;
  $("#neighbours").replaceChildren(...(view.neighbours || []).map((n) =>
    el("li", {}, `${n.shown}  cos ${n.cosine.toFixed(3)}`)));
  const w = view.words;
  $("#word-cosine").textContent = `cos(${w.a}, ${w.b}): by spelling (mean of their tokens' rows) ` +
    `${w.spelling.toFixed(3)}; in context (the last layer's vector after "${w.frame.replace("{}", "…")}") ` +
    `${w.context.toFixed(3)}`;
}
