// Panel 5, Next token: the likeliest next tokens as bars, and the entropy, at the temperature, top-k and top-p of
// the controls. The probabilities are computed here, from the logits the keystroke brought (sampling.js, the
// formula of model/sampling.py): moving a control redraws the bars without a request. Under them, the same logits
// at four temperatures: the sampling lesson's sweep.
import { $, el, guarded, svg } from "../dom.js";
import { beforeNextWord, setText } from "../input.js";
import { entropyBits, nextTokenProbs } from "../sampling.js";
import { state } from "../state.js";

export const section = "#next-section";
const SWEEP = [0, 0.5, 1, 2];                  // the temperatures of the sampling lesson

// "He broke the" where several words fit, at the slider's end: the probability spreads over them
async function temperatureExperiment() {
  $("#temperature").value = $("#temperature").max;
  await setText(beforeNextWord("He broke the"));
}

export function start() {
  const temperature = state.limits.sampling.temperature;
  Object.assign($("#temperature"), { min: temperature.min, max: temperature.max, value: temperature.default });
  setRanges();
  $("#try-temperature").addEventListener("click", temperatureExperiment);
  for (const id of ["#temperature", "#top-k", "#top-p"]) {
    $(id).addEventListener("input", () => guarded(section, () => state.page && show(state.page)));
  }
}

// top-k's range is the vocabulary of the model shown: it changes with the model
export function setRanges() {
  const { top_k: topK, top_p: topP } = state.limits.sampling;
  Object.assign($("#top-k"), { min: topK.min, max: topK.max });
  Object.assign($("#top-p"), { min: topP.above, max: topP.max });
}

// The controls' settings, checked against the served limits (an Error says what is wrong); generation uses them too.
export function samplingSettings() {
  const { top_k: kRange, top_p: pRange } = state.limits.sampling;
  const topK = $("#top-k").value.trim();
  const topP = $("#top-p").value.trim();
  const k = topK === "" ? null : Number(topK);
  const p = topP === "" ? null : Number(topP);
  if (k !== null && !(Number.isInteger(k) && k >= kRange.min && k <= kRange.max)) {
    throw new Error(`top-k must be a whole number in ${kRange.min}..${kRange.max} (or empty: all tokens)`);
  }
  if (p !== null && !(p > pRange.above && p <= pRange.max)) {
    throw new Error(`top-p must be in (${pRange.above}, ${pRange.max}] (or empty: ${pRange.max})`);
  }
  return { temperature: Number($("#temperature").value), top_k: k, top_p: p };
}

export function show(page) {
  const { temperature, top_k: topK, top_p: topP } = samplingSettings();
  $("#temperature-value").textContent = temperature.toFixed(2);
  const probs = nextTokenProbs(page.next.logits, temperature, topK, topP);
  const top = page.next.top;
  const rowHeight = 24, labelWidth = 90, width = 460, track = width - labelWidth - 60;
  const bars = $("#bars");
  bars.setAttribute("viewBox", `0 0 ${width} ${top.length * rowHeight}`);
  bars.setAttribute("height", top.length * rowHeight);
  bars.replaceChildren(...top.flatMap((t, r) => {
    const p = probs[t.id];
    const y = r * rowHeight;
    return [
      svg("text", { x: labelWidth - 6, y: y + 16, "text-anchor": "end" }, t.shown),
      svg("rect", { class: "track", x: labelWidth, y: y + 4, width: track, height: 16 }),
      svg("rect", { class: "bar", x: labelWidth, y: y + 4, width: track * p, height: 16, "data-token": t.text,
        "data-prob": p }),
      svg("text", { x: labelWidth + track * p + 4, y: y + 16 }, percent(p)),
    ];
  }));
  const h = entropyBits(probs);
  $("#entropy").textContent = `entropy ${h.toFixed(3)} bits (0 = certain; at most log₂ ${probs.length} = ` +
    `${Math.log2(probs.length).toFixed(2)} bits when every token is equally likely)`;
  $("#entropy").dataset.bits = h;
  drawSweep(page.next);
}

// The entropy and the likeliest token's probability at each temperature of SWEEP (top-k and top-p left out).
function drawSweep(next) {
  const head = el("tr", {}, [el("th", {}, "τ"), el("th", {}, "entropy"), el("th", {}, `P(${next.top[0].shown})`)]);
  $("#sweep").replaceChildren(head, ...SWEEP.map((tau) => {
    const probs = nextTokenProbs(next.logits, tau);
    const h = entropyBits(probs);
    return el("tr", { "data-temperature": tau, "data-bits": h }, [el("td", {}, tau.toFixed(1)),
      el("td", {}, `${h.toFixed(2)} bits`), el("td", {}, `${(100 * probs[next.top[0].id]).toFixed(1)}%`)]);
  }));
}

// 12.3%, or two significant digits below 0.1% (a 50,257-token vocabulary spreads thin: 0.0021%)
const percent = (p) => (p >= 0.001 || p === 0 ? `${(100 * p).toFixed(1)}%` : `${(100 * p).toPrecision(2)}%`);
