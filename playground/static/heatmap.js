// Heatmaps: one colour ramp and its scale, one way to paint a table of numbers, one drawing of an attention matrix
// and one grid of heads (panel 4's, and the Train panel's attention over training).
import { el } from "./dom.js";

// A perceptual colour ramp (dark violet → blue → green → yellow, like viridis) for values in [0, 1].
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function colour(w) {
  const x = Math.min(Math.max(w, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}
export const MASKED = [230, 232, 238];                     // the future a causal head cannot see: grey

// The colour scale a heatmap is read with: the ramp from `low` to `high` (their labels), what the colour means,
// and the masked grey where a causal head has one.
export function colourScale(low, high, meaning, { masked = false } = {}) {
  const ramp = paint(document.createElement("canvas"), 1, 64, (_, j) => colour(j / 63));
  ramp.className = "ramp";
  const parts = [el("span", {}, low), ramp, el("span", {}, high), el("span", { class: "meaning" }, meaning)];
  if (masked) parts.push(el("span", { class: "masked-key" }, "grey: masked (the future)"));
  return el("div", { class: "colour-scale" }, parts);
}

// A table of `rows` × `columns` cells painted one pixel each on `canvas`; colourAt(i, j) gives [r, g, b].
export function paint(canvas, rows, columns, colourAt) {
  Object.assign(canvas, { width: columns, height: rows });
  const context = canvas.getContext("2d");
  const image = context.createImageData(columns, rows);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < columns; j++) image.data.set([...colourAt(i, j), 255], 4 * (i * columns + j));
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// One head's attention as a T × T canvas, one pixel per (query i, key j); rows[i] holds query i's weights on keys
// 0..i, the masked future is grey. The one drawing of attention: shown small in the grids, enlarged in panel 4.
export function attentionCanvas(rows) {
  const T = rows.length;
  return paint(document.createElement("canvas"), T, T, (i, j) => (j <= i ? colour(rows[i][j]) : MASKED));
}

// One small heatmap per block (grid rows) and head (grid columns) of attention[block][head]. With onPick, a
// click picks a head and `selected` ({layer, head}) is outlined. With habits ([block][head] {habit, place, share},
// the heads lesson's measure), each head is captioned with the place it looks at most.
export const SHORT_PLACE = { previous: "previous", itself: "itself", "line start": "line start",
  "word start": "word start" };
export function headGrid(grid, attention, { selected = null, onPick = null, habits = null } = {}) {
  const many = attention[0].length > 6;                    // GPT-2's 12 heads a row: smaller cells fit the panel
  grid.style.gridTemplateColumns = `auto repeat(${attention[0].length}, auto)`;
  grid.classList.toggle("many", many);
  const cells = attention.flatMap((heads, layer) => {
    const label = document.createElement("span");
    label.className = "layer-label";
    label.textContent = `block ${layer}`;
    return [label, ...heads.map((rows, head) => {
      const cell = document.createElement("div");
      cell.className = "cell";
      Object.assign(cell.dataset, { layer, head });
      const caption = document.createElement("span");
      caption.textContent = many ? `${head}` : `head ${head}`;
      cell.title = `block ${layer}, head ${head}`;
      cell.append(attentionCanvas(rows), caption);
      const habit = habits && habits[layer][head];
      if (habit) {
        const line = el("span", { class: "habit", title: `block ${layer} head ${head}: ${habit.habit}` },
          `${SHORT_PLACE[habit.place]} ${(100 * habit.share).toFixed(0)}%`);
        Object.assign(line.dataset, { place: habit.place, share: habit.share });
        cell.append(line);
      }
      if (onPick) {
        cell.classList.add("pickable");
        cell.classList.toggle("selected", layer === selected.layer && head === selected.head);
        cell.addEventListener("click", () => onPick({ layer, head }));
      }
      return cell;
    })];
  });
  grid.replaceChildren(...cells);
}

// Signed values (a vector's coordinates) in [-1, 1]: blue below 0, white at 0, red above (a diverging ramp).
const BLUE = [33, 102, 172];
const RED = [178, 24, 43];
export function signedColour(v) {
  const t = Math.min(Math.max(v, -1), 1);
  const end = t < 0 ? BLUE : RED;
  return end.map((c) => Math.round(255 + Math.abs(t) * (c - 255)));
}

// A vector as one row of cells, `values[d] / scale` coloured by signedColour, one canvas pixel each (the page
// stretches it); hovering a cell calls onHover(event, d), and onHover(null) on leaving.
export function stripCanvas(values, scale, onHover) {
  const canvas = paint(document.createElement("canvas"), 1, values.length,
    (_, d) => signedColour(values[d] / scale));
  canvas.className = "strip";
  if (onHover) {
    canvas.addEventListener("mousemove", (event) => {
      const d = Math.floor((event.offsetX / canvas.clientWidth) * values.length);
      if (d >= 0 && d < values.length) onHover(event, d);
    });
    canvas.addEventListener("mouseleave", () => onHover(null));
  }
  return canvas;
}
