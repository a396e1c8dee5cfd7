// Panel 3, Positions: the model's table of positions as a heatmap (sinusoidal, learned, RoPE's angles), and the
// model's answers to one sentence in two orders.
import { getJSON } from "../api.js";
import { $, el } from "../dom.js";
import { colour, paint } from "../heatmap.js";

export const section = "#positions-section";

export const start = () => load();

export async function load() {
  const view = await getJSON("/api/positions");
  const canvas = $("#pe-table");
  canvas.hidden = !view.table;
  if (view.table) {                     // rows: positions, columns: dimensions; values in [-scale, scale]
    const scale = view.scale || 1;
    paint(canvas, view.table.length, view.table[0].length, (p, i) => colour((view.table[p][i] / scale + 1) / 2));
  }
  const step = view.rows.length > 1 ? view.rows[1] - view.rows[0] : 1;
  $("#pe-rows").textContent = !view.table ? "" :
    `${view.positional} table: ${step > 1 ? `every ${step}th of its ${view.block_size.toLocaleString("en")} positions` :
      `its ${view.block_size} positions`} (rows) × ${view.table[0].length} dimensions; colour from ` +
    `−${view.scale} to +${view.scale}.`;
  const items = view.pair.map((p) => el("li", {}, `${p.prompt} → ${p.shown}`));
  if (!view.table) items.push(el("li", {}, "this model has no positions: both orders are the same bag of tokens to it"));
  if (view.positional === "rope") {
    items.push(el("li", {}, "this model adds nothing to its tokens: it turns each head's queries and keys by the " +
      "angle p·θᵢ (RoPE); the table shows cos(p·θᵢ), one column per pair of a head's dimensions"));
  } else if (view.positional === "learned") {
    items.push(el("li", {}, "this model's positions are a learned table (GPT-2's): the rows training found"));
  }
  $("#order-pair").replaceChildren(...items);
}
