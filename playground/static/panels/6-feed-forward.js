// Panel 6, Feed-forward: how much each block's FFN changes each token, and the next token with every FFN and with
// one block's FFN left out. A keystroke's answer holds this view; switching a block off or on asks for it alone.
// The experiment leaves each block's FFN out in turn on a fact, as the feed-forward lesson does.
import { postJSON } from "../api.js";
import { $, $$, el, guarded } from "../dom.js";
import { colour, colourScale } from "../heatmap.js";
import { beforeNextWord, setText } from "../input.js";
import { state } from "../state.js";

export const section = "#ffn-section";
const FACT = "This animal barks. This animal is a";            // the feed-forward lesson's prompt

export function start() {
  $("#try-ffn").addEventListener("click", () => guarded(section, experiment));
}

// The fact in the text box; then every block's FFN left out in turn: P(the likeliest token with every FFN) without
// each, and the block whose absence hurts most switched off in the view.
async function experiment() {
  const text = beforeNextWord(FACT);
  await setText(text);
  const views = [];
  for (let block = 0; block < state.page.feedforward.change.length; block++) {
    views.push(await postJSON("/api/feedforward", { text, off: block }));
  }
  const top = views[0].with_all[0];
  const without = views.map((v) => v.top_without);
  $("#ffn-sweep").replaceChildren(el("span", {}, `P(${top.shown} next) with every FFN: ${(100 * top.prob).toFixed(1)}%; ` +
    "leaving out one block's FFN: "), ...without.map((p, b) => el("span", { class: "ffn-drop", "data-block": b,
    "data-prob": p }, `block ${b} ${(100 * p).toFixed(1)}%${b < without.length - 1 ? ", " : ""}`)));
  $("#ffn-sweep").dataset.text = text;                      // cleared when another text is drawn
  const worst = without.indexOf(Math.min(...without));
  $(`input[name=ffn-off][value='${worst}']`).checked = true;
  await switchBlock();
}
// the block whose FFN is left out, or null (every FFN on): a keystroke asks for the view with it
export function blockOff() {
  const off = $("input[name=ffn-off]:checked");
  return off && off.value !== "" ? Number(off.value) : null;
}

export function show(page) {
  if ($("#ffn-sweep").dataset.text !== $("#text").value) $("#ffn-sweep").replaceChildren();
  draw(page.feedforward);
}

async function switchBlock() {
  const asked = state.keystroke;
  const view = await postJSON("/api/feedforward", { text: $("#text").value, off: blockOff() });
  if (asked === state.keystroke) draw(view);                 // a newer keystroke brings its own
}

function draw(view) {
  const blocks = view.change.length;
  if ($$("input[name=ffn-off]").length !== blocks + 1) {     // a model with another number of blocks
    const choices = [["", "every FFN on"], ...[...Array(blocks).keys()].map((b) => [String(b), `block ${b} off`])];
    $("#ffn-off").replaceChildren(...choices.map(([value, text]) => {
      const input = el("input", { type: "radio", name: "ffn-off", value });
      input.checked = value === String(view.off ?? "");
      input.addEventListener("change", () => guarded(section, switchBlock));
      return el("label", {}, [input, ` ${text}`]);
    }));
  }
  const largest = Math.max(1e-9, ...view.relative.flat());
  const head = el("tr", {}, [el("th"), ...view.tokens.map((t) => el("th", {}, t.shown))]);
  const rows = view.change.map((row, b) => el("tr", {}, [el("th", {}, `block ${b}`), ...row.map((size, i) => {
    const relative = view.relative[b][i];
    const td = el("td", { class: "ffn-cell" });
    td.style.background = `rgb(${colour(relative / largest).join(",")})`;   // brightest: the largest here
    td.title = `‖FFN(x)‖ = ${size.toFixed(3)}, ${(100 * relative).toFixed(0)}% of the vector it is added to`;
    return td;
  })]));
  $("#ffn-grid").replaceChildren(el("table", {}, [head, ...rows]),
    colourScale("0", "the largest", "‖FFN(x)‖ / ‖x‖ (columns: tokens)"));
  const list = (tokens) => tokens.map((t) => {
    const li = el("li", {}, `${t.shown}  ${(100 * t.prob).toFixed(1)}%`);
    li.dataset.prob = t.prob;
    return li;
  });
  $("#ffn-with").replaceChildren(...list(view.with_all));
  $("#ffn-without").replaceChildren(...(view.without ? list(view.without) : []));
  $("#ffn-without-title").textContent = view.off === null ? "next token, one FFN left out (choose a block)" :
    `next token, block ${view.off}'s FFN left out`;
}
