// Panel 8, Model card: the checkpoint's shape, size, tokenizer and how far it was trained (also the page's
// header line).
import { $, el } from "../dom.js";
import { state } from "../state.js";

export const section = "#model-section";

export function start() {
  const card = state.card;
  const m = card.model;
  const val = card.best_val_loss === null ? "not measured" : card.best_val_loss.toFixed(4);
  $("#card-summary").textContent = `${card.checkpoint} · ${m.n_layer} blocks × ${m.n_head} heads, width ` +
    `${m.n_embd} · ${card.parameters.toLocaleString("en")} parameters · ${card.tokenizer.kind} tokenizer ` +
    `(${card.tokenizer.vocab_size} tokens) · ` +
    (card.imported ? "imported weights" : `trained ${card.step} steps · best val loss ${val}`);
  const rows = [
    ["checkpoint", card.checkpoint],
    ["parameters", card.parameters.toLocaleString("en")],
    ["tokenizer", `${card.tokenizer.kind}, ${card.tokenizer.vocab_size} tokens`],
    ["context (block_size)", `${m.block_size} tokens`],
    ["blocks × heads", `${m.n_layer} × ${m.n_head} (head size ${m.head_size})`],
    ["width (n_embd)", m.n_embd],
    ["feed-forward width", `${m.ffn_mult} × ${m.n_embd} = ${m.ffn_mult * m.n_embd}`],
    ["positions", m.positional],
    ["biases, activation, √C", `${m.bias ? "biases" : "no biases"}, ${m.activation}, ` +
      (m.embed_scale ? "token embedding × √C" : "no √C")],
    ["dropout", m.dropout],
    ...(card.imported ? [["trained", "elsewhere: weights read from a model folder, whose training is not recorded"]] : [
      ["trained on", card.data.path],
      ["training steps", `${card.step} of ${card.train.max_iters} (batch ${card.train.batch_size}, lr ${card.train.lr})`],
    ]),
    ["best validation loss", val],
    ["device", card.device],
  ];
  $("#model-card").replaceChildren(...rows.map(([key, value]) =>
    el("tr", {}, [el("td", {}, key), el("td", {}, String(value))])));
}
