// Panel 3, Positions: the model's table of positions as a heatmap (sinusoidal, learned, RoPE's angles) with its
// axes and colour scale, the model's answers to one sentence in two orders, and one click to train the same model
// without positions (in the Train panel).
import { getJSON } from "../api.js";
import { $, el, svg } from "../dom.js";
import { colour, colourScale, paint } from "../heatmap.js";
import { state } from "../state.js";
import { trainLike } from "./9-train.js";

export const section = "#positions-section";

export function start() {
  $("#train-without-positions").addEventListener("click", async () => {
    $("#without-positions-note").textContent = await trainLike(state.card, "none");
  });
  return load();
}

export async function load() {
  const view = await getJSON("/api/positions");
  const scale = view.scale || 1;                                 // values in [-scale, scale]
  const shown = Number(scale.toPrecision(2));
  $("#pe-figure").replaceChildren(...(view.table ?
    [table(view.table, scale, view.rows), colourScale(`−${shown}`, `+${shown}`, "value")] : []));
  const step = view.rows.length > 1 ? view.rows[1] - view.rows[0] : 1;
  $("#pe-rows").textContent = !view.table ? "" :
    `${view.positional} table: ${step > 1 ? `every ${step}th of its ${view.block_size.toLocaleString("en")} positions` :
      `its ${view.block_size} positions`} (rows) × ${view.table[0].length} dimensions.`;
  const items = view.pair.map((p) => el("li", {}, `${p.prompt} → ${p.shown}`));
  if (!view.table) items.push(el("li", {}, "this model has no positions: both orders are the same bag of tokens to it"));
  if (view.positional === "rope") {
    items.push(el("li", {}, "this model adds nothing to its tokens: it turns each head's queries and keys by the " +
      "angle p·θᵢ (RoPE); the table shows cos(p·θᵢ), one column per pair of a head's dimensions"));
  } else if (view.positional === "learned") {
    items.push(el("li", {}, "this model's positions are a learned table (GPT-2's): the rows training found"));
  }
  $("#order-pair").replaceChildren(...items);
  $("#train-without-positions").disabled = !view.table;      // a model without positions: nothing to take away
}

// The table (T rows × C dimensions, values in [-scale, scale]; row p is position rows[p]) as an image with a tick
// every few rows and columns.
function table(pe, scale, rows) {
  const [T, C] = [pe.length, pe[0].length];
  const [W, H, left, top, bottom] = [520, 200, 44, 8, 34];
  const root = svg("svg", { id: "pe-table", class: "heatmap", viewBox: `0 0 ${W} ${H}`, "data-rows": T,
    "data-columns": C });
  const [w, h] = [W - left - 8, H - top - bottom];
  const image = paint(document.createElement("canvas"), T, C, (p, i) => colour((pe[p][i] / scale + 1) / 2));
  root.append(svg("image", { href: image.toDataURL(), x: left, y: top, width: w, height: h,
    preserveAspectRatio: "none" }));
  for (const p of ticks(T)) {
    root.append(svg("text", { x: left - 4, y: top + (p + 0.5) * h / T + 4, "text-anchor": "end" }, String(rows[p])));
  }
  for (const i of ticks(C)) {
    root.append(svg("text", { x: left + (i + 0.5) * w / C, y: top + h + 13, "text-anchor": "middle" }, String(i)));
  }
  root.append(svg("text", { class: "axis-title", x: left + w / 2, y: H - 3, "text-anchor": "middle" },
    "column i: a dimension (for RoPE, a pair of a head's dimensions) →"));
  root.append(svg("text", { class: "axis-title", x: 0, y: 0, "text-anchor": "middle",
    transform: `translate(11, ${top + h / 2}) rotate(-90)` }, "position p →"));
  return root;
}

// about six round ticks from 0 to n − 1
function ticks(n) {
  const step = [1, 2, 4, 8, 16, 32, 64, 128, 256].find((s) => n / s <= 7) || Math.ceil(n / 6);
  return [...Array(Math.ceil(n / step)).keys()].map((k) => k * step);
}
