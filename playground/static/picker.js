// The model picker above the text box: every model the server can show (GET /api/models: each run of the runs
// folder with a best checkpoint, by name, and the one the server started with). Choosing one switches the server
// (POST /api/checkpoint, by the run's name) and every view redraws ("modelchange", heard by main.js).
import { getJSON, postJSON } from "./api.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

const STARTUP = "";           // the option of the start-up model when it is not a run of the runs folder

function describe(model) {
  if (model.problem) return `${model.name}: ${model.problem}`;
  const words = model.tokenizer === "word" ? "a token per word" : model.tokenizer === "char" ?
    "a token per character" : `${model.tokenizer} tokens`;
  return `${model.name} · ${words} (${model.vocab_size}) · ${model.parameters.toLocaleString("en")} parameters ` +
    `· step ${model.step}` + (model.startup ? " · start-up" : "") + (model.training ? " · training now" : "");
}

// The list as the server has it now (a run trained from the page appears once it has saved a checkpoint).
export async function refresh() {
  const { models } = await getJSON("/api/models");
  const picker = $("#model-picker");
  picker.replaceChildren(...models.map((model) => {
    const option = el("option", { value: model.run ?? STARTUP }, describe(model));
    option.disabled = Boolean(model.problem);
    option.selected = model.current;
    return option;
  }));
  if (!models.some((model) => model.current)) {            // a page run's last.pt, shown from the Train panel
    picker.prepend(el("option", { value: "", disabled: "" }, `${state.card.checkpoint} (from the Train panel)`));
    picker.selectedIndex = 0;
  }
}

async function choose() {
  const picker = $("#model-picker");
  picker.disabled = true;
  $("#model-note").textContent = "loading…";
  try {
    state.card = await postJSON("/api/checkpoint", { run: picker.value === STARTUP ? null : picker.value });
    $("#model-note").textContent = "";
    document.dispatchEvent(new CustomEvent("modelchange"));
  } catch (error) {
    $("#model-note").textContent = error.message;
    await refresh();                                        // back to the model still shown
  } finally {
    picker.disabled = false;
  }
}

export async function start() {
  const picker = $("#model-picker");
  picker.addEventListener("change", choose);
  // listed again before it is opened (the pointer comes near it) and when a page run starts, saves or ends
  const again = () => refresh().catch((error) => { $("#model-note").textContent = error.message; });
  picker.addEventListener("mouseenter", again);
  document.addEventListener("runchange", again);
  await refresh();
}
