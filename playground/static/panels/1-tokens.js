// Panel 1, Tokens: the typed text as token chips, each with its id, and how much of the context it fills. A word
// the model's vocabulary lacks (a word-level model reads it as <unk>) is shown as typed, marked, and named below.
import { $, chip, el } from "../dom.js";
import { setText } from "../input.js";

export const section = "#tokens-section";

export function start() {
  $("#try-unknown").addEventListener("click", () => setText("The zebra chased the cat."));
}

export function show(page) {
  const { tokens, count, context, tokenizer } = page.tokens;
  $("#tokens").replaceChildren(...tokens.map((t) => {
    const span = chip(t.shown, t.id);
    span.append(el("small", {}, String(t.id)));
    if (t.unknown) {
      span.classList.add("unknown");
      span.title = `not in this model's vocabulary: read as <unk> (id ${t.id})`;
    }
    return span;
  }));
  const unknown = [...new Set(tokens.filter((t) => t.unknown).map((t) => t.text.trim()))];
  $("#count").textContent = `${count} ${tokenizer} token${count === 1 ? "" : "s"} of the ${context}-token context`
    + (unknown.length ? `; not in its vocabulary, read as <unk>: ${unknown.join(", ")}` : "");
}
