// The playground page: the text box, and the panels numbered as the page numbers them (panels/). Each keystroke is
// one request, POST /api/page, whose answer every panel of the typed text draws; the other panels ask for their
// own data when they start. A panel that fails shows its own error and leaves the others working.
import { getJSON, postJSON } from "./api.js";
import { $, guarded, panelStale } from "./dom.js";
import { state } from "./state.js";
import * as picker from "./picker.js";
import * as tokens from "./panels/1-tokens.js";
import * as embeddings from "./panels/2-embeddings.js";
import * as positions from "./panels/3-positions.js";
import * as attention from "./panels/4-attention.js";
import * as insideHead from "./panels/4b-inside-a-head.js";
import * as nextToken from "./panels/5-next-token.js";
import * as feedForward from "./panels/6-feed-forward.js";
import * as generate from "./panels/7-generate.js";
import * as modelCard from "./panels/8-model-card.js";
import * as train from "./panels/9-train.js";
import * as runs from "./panels/10-runs.js";

const DEBOUNCE_MS = 200;
const OF_THE_TEXT = [tokens, attention, insideHead, nextToken, feedForward];   // the panels each keystroke redraws

// The input panel's own error (an unreadable text, a server that is gone): each panel of the text says it shows
// an older text and greys it, and the token count is struck through, until the text is readable again.
function showError(message) {
  $("#error").hidden = !message;
  $("#error").textContent = message || "";
  $("#count").classList.toggle("stale", Boolean(message));
  for (const panel of OF_THE_TEXT) {
    panelStale(panel.section, message && `Not redrawn: the text above was refused (${message}). What is shown is ` +
      "the last text it could read.");
  }
}

async function keystroke() {
  const number = ++state.keystroke;
  const text = $("#text").value;
  const second = $("#compare-toggle").checked ? $("#text-b").value : "";
  try {
    if (!text) throw new Error("type some text above: the model needs at least one token to look at");
    const page = await postJSON("/api/page", { text, compare_with: second || null, ffn_off: feedForward.blockOff(),
      head: insideHead.choice() });
    if (number !== state.keystroke) return;                // a newer text is already on its way
    state.page = page;
    showError(null);
  } catch (error) {
    if (number === state.keystroke) showError(error.message);
    return;
  }
  await Promise.all(OF_THE_TEXT.map((panel) => guarded(panel.section, () => panel.show(state.page))));
}

// A one-click experiment's text (input.js setText): typed into the box as if by hand, and every view redrawn.
async function setText({ text, second, resolve }) {
  $("#text").value = text;
  if (second !== null) $("#text-b").value = second;
  if ($("#compare-toggle").checked !== (second !== null)) {
    $("#compare-toggle").checked = second !== null;
    compareChanged();
  }
  await keystroke();
  resolve();
}

function compareChanged() {
  const compare = $("#compare-toggle").checked;
  $("#compare-input").hidden = !compare;
  $(attention.section).classList.toggle("wide", compare);         // two heatmaps side by side
  if (compare && !$("#text").value.trim()) $("#text").value = "He broke the glass.";
}

let timer = null;
function typed() {
  clearTimeout(timer);
  timer = setTimeout(keystroke, DEBOUNCE_MS);
}

// After a model is picked (or "Show this model in every view"): the new model's limits (its vocabulary), card,
// the picker, and every view.
async function modelChanged() {
  state.limits = await getJSON("/api/limits");
  nextToken.setRanges();
  guarded(modelCard.section, modelCard.start);
  picker.refresh().catch((error) => { $("#model-note").textContent = error.message; });
  guarded(embeddings.section, embeddings.loadFirst);
  guarded(positions.section, positions.load);
  keystroke();
}

async function start() {
  try {
    [state.card, state.limits] = await Promise.all([getJSON("/api/model"), getJSON("/api/limits")]);
  } catch (error) {
    showError(`cannot reach the model: ${error.message}`);
    document.documentElement.dataset.started = "failed";
    return;
  }
  $("#text").value = state.card.sample.prompt;
  $("#text").addEventListener("input", typed);
  $("#text-b").addEventListener("input", typed);
  $("#compare-toggle").addEventListener("change", () => { compareChanged(); keystroke(); });
  for (const button of document.querySelectorAll(".example")) {      // data-char-text: a char model's own prompt
    button.addEventListener("click", () => {
      const char = state.card.tokenizer.kind === "char" && button.dataset.charText;
      $("#text").value = char || button.textContent;
      keystroke();
    });
  }
  document.addEventListener("settext", (event) => setText(event.detail));
  document.addEventListener("modelchange", () => modelChanged().catch((error) => showError(error.message)));
  document.addEventListener("headpick", (event) => {       // a head or token picked in panel 4 or 4b
    if (event.detail.headChanged && state.page) guarded(attention.section, () => attention.show(state.page));
    guarded(insideHead.section, insideHead.ask);
  });
  picker.start().catch((error) => { $("#model-note").textContent = `cannot list the models: ${error.message}`; });
  for (const panel of [tokens, embeddings, positions, attention, insideHead, nextToken, feedForward, generate,
    modelCard, train, runs]) {
    guarded(panel.section, () => panel.start());
  }
  keystroke();
  // the text box is the user's from here on (a script driving the page waits for this mark before typing)
  document.documentElement.dataset.started = "yes";
}

start();
