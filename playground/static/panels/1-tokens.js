// Panel 1, Tokens: the typed text as token chips, each with its id, and how much of the context it fills.
import { $, chip, el } from "../dom.js";

export const section = "#tokens-section";

export function show(page) {
  const { tokens, count, context, tokenizer } = page.tokens;
  $("#tokens").replaceChildren(...tokens.map((t) => {
    const span = chip(t.shown, t.id);
    span.append(el("small", {}, String(t.id)));
    return span;
  }));
  $("#count").textContent = `${count} ${tokenizer} token${count === 1 ? "" : "s"} of the ${context}-token context`;
}
