// Panel 4, Attention: every block's and head's weights as a grid of small heatmaps; the picked head enlarged with
// every token on both axes and BertViz's head view under it; in compare mode, both sentences and the cosine of
// their last-layer vectors at each position and each one's greedy continuation. Each small heatmap is captioned
// with its head's habit on the text (the heads lesson's measure, computed by the server on the model shown).
import { $, chip, el, hideTooltip, showTooltip, svg } from "../dom.js";
import { attentionCanvas, colourScale, headGrid } from "../heatmap.js";
import { setText } from "../input.js";
import { state } from "../state.js";
import { pick } from "./4b-inside-a-head.js";

export const section = "#attention-section";

// the heads lesson's sentence, after the line start it is read after there (so the captions are its numbers)
export const HEADS_SENTENCE = "\nHe broke the glass.";

export function start() {
  $("#try-heads").addEventListener("click", () => setText(HEADS_SENTENCE));
  $("#try-glass-news").addEventListener("click", () => setText("He broke the glass.", "He broke the news."));
  $("#attention-grid").after(el("div", { class: "grid-key" }, [
    el("p", { class: "muted" }, "Each square: rows are the tokens looking, columns the tokens looked at, in text " +
      "order from the top left. Under it, the head's habit: where its tokens look most on average."),
    colourScale("0", "1", "attention weight", { masked: true }),
  ]));
}

// the sentences shown: one, or two in compare mode ({shown, attention} each)
const sentences = (attention) => (attention.a ? [attention.a, attention.b] : [attention]);

export function show(page) {
  const { n_layer: layers, n_head: heads } = page.attention;
  if (state.selected.layer >= layers || state.selected.head >= heads) state.selected = { layer: 0, head: 0 };
  headGrid($("#attention-grid"), sentences(page.attention)[0].attention, {
    selected: state.selected,
    onPick: (picked) => pick(picked),                        // enlarged here, and opened in panel 4b
    habits: page.attention.habits,
  });
  showDetail(page.attention);
  showCosine(page.attention);
}

function showDetail(attention) {
  const { layer, head } = state.selected;
  $("#attention-detail").replaceChildren(...sentences(attention).map((s, n) => {
    const rows = s.attention[layer][head];
    const view = headView(s.shown, rows);
    const part = s.count > s.tokens.length ? ` (the first ${s.tokens.length} of its ${s.count} tokens: every head ` +
      "of a large model for a longer text would be megabytes a keystroke)" : "";
    const caption = el("figcaption", {}, `block ${layer}, head ${head}: ${JSON.stringify(s.tokens.join(""))}${part}` +
      (n === 0 ? " (click a row to follow that token inside the head, panel 4b)" : ""));
    const onClick = n === 0 ? (i) => pick({ query: i }) : null;     // the typed text's row i, followed in panel 4b
    const frame = el("div", { class: "heatmap-frame" }, [
      el("span", { class: "axis-y" }, "the token looking (query) →"),
      el("div", {}, [el("div", { class: "axis-x" }, "the tokens it looks at (keys) →"),
        enlarged(s.shown, rows, view.show, onClick)]),
    ]);
    return el("figure", {}, [caption, frame, colourScale("0", "1", "weight", { masked: true }), view.box]);
  }));
}

const LABEL = 10;            // the longest token label the enlarged heatmap writes in full

// One head enlarged: rows are the tokens looking (queries), columns the tokens looked at (keys). The cells are
// the grid's own canvas, scaled up; hovering a row outlines it and calls onRow(i), clicking it calls onClick(i).
function enlarged(shown, rows, onRow, onClick) {
  const T = shown.length;
  const cell = Math.max(8, Math.min(34, Math.floor(420 / T)));      // a sentence of words gets large cells
  const margin = 14 + 7.5 * Math.min(LABEL, Math.max(...shown.map((s) => s.length)));   // room for the labels
  const size = margin + T * cell + 4;
  const root = svg("svg", { class: "heatmap", width: size, height: size, viewBox: `0 0 ${size} ${size}` });
  root.append(svg("image", { href: attentionCanvas(rows).toDataURL(), x: margin, y: margin, width: T * cell,
    height: T * cell, preserveAspectRatio: "none" }));
  shown.forEach((s, i) => {
    const label = s.length > LABEL ? `${s.slice(0, LABEL - 1)}…` : s;      // a word whole, up to LABEL letters
    root.append(svg("text", { x: margin - 4, y: margin + i * cell + cell * 0.72, "text-anchor": "end",
      class: "query-label" }, label));
    root.append(svg("text", { x: 0, y: 0, "text-anchor": "start", class: "key-label",
      transform: `translate(${margin + i * cell + cell * 0.72}, ${margin - 4}) rotate(-90)` }, label));
  });
  const outline = svg("rect", { class: "row-hover", x: margin, width: T * cell, height: cell, visibility: "hidden" });
  root.append(outline);
  const leave = () => { hideTooltip(); outline.setAttribute("visibility", "hidden"); onRow(null); };
  root.addEventListener("mousemove", (event) => {
    const box = root.getBoundingClientRect();
    const i = Math.floor((event.clientY - box.top - margin) / cell);
    const j = Math.floor((event.clientX - box.left - margin) / cell);
    if (!(i >= 0 && i < T && j >= 0 && j < T)) return leave();
    showTooltip(event, `${shown[i]} looks at ${shown[j]}: ` + (j <= i ? rows[i][j].toFixed(3) : "masked (future)"));
    outline.setAttribute("y", margin + i * cell);
    outline.setAttribute("visibility", "visible");
    onRow(i);
  });
  root.addEventListener("mouseleave", leave);
  if (onClick) {
    root.classList.add("pickable");
    root.addEventListener("click", (event) => {
      const i = Math.floor((event.clientY - root.getBoundingClientRect().top - margin) / cell);
      if (i >= 0 && i < T) onClick(i);
    });
  }
  return root;
}

// BertViz's head view, as shading: hover a token and every token it looks at lights up by its weight.
function headView(shown, rows) {
  const chips = shown.map((s) => chip(s));
  const show = (i) => {
    const strongest = i === null ? 1 : Math.max(...rows[i]);
    chips.forEach((c, j) => {
      c.classList.toggle("query", i === j);
      const w = i === null || j > i ? 0 : rows[i][j];
      const shade = w / strongest;                         // the most looked-at token gets the full colour
      c.style.background = `rgba(59, 91, 219, ${shade.toFixed(3)})`;
      c.style.color = shade > 0.5 ? "#fff" : "";
      c.title = i === null ? "" : j <= i ? `weight ${w.toFixed(3)}` : "masked (future)";
    });
  };
  chips.forEach((c, i) => {
    c.addEventListener("mouseenter", () => show(i));
    c.addEventListener("mouseleave", () => show(null));
  });
  return { box: el("div", { class: "chips headview" }, chips), show };
}

function showCosine(attention) {
  const compare = attention.cosine !== undefined;
  $("#cosine-view").hidden = !compare;
  if (!compare) return;
  const { a, b, cosine, first_difference: firstDifference } = attention;
  $("#continuations").replaceChildren(...[a, b].map((s) => el("li", {}, [
    el("span", { class: "prompt" }, s.tokens.join("")), el("b", { class: "continued" }, s.continuation)])));
  $("#cosine").replaceChildren(...cosine.map((c, i) => {
    const shade = Math.max(0, Math.min(1, (1 - c) * 1.5));    // 1 → white, lower → darker red
    const cell = el("div", { class: "cos-cell" },
      [el("span", {}, a.shown[i]), el("span", {}, b.shown[i]), el("b", {}, c.toFixed(2))]);
    cell.style.background = `rgba(201, 42, 42, ${shade.toFixed(3)})`;
    cell.style.color = shade > 0.55 ? "#fff" : "";
    cell.title = `position ${i}: ${a.shown[i]} / ${b.shown[i]}` +
      (i < firstDifference ? " (the texts agree up to here)" : "");
    return cell;
  }));
}
