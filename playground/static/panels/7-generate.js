// Panel 7, Generate: greedy or sampled (with panel 5's temperature, top-k and top-p), streamed token by token as
// Server-Sent Events, with a seed and a Stop button.
import { request } from "../api.js";
import { $ } from "../dom.js";
import { state } from "../state.js";
import { samplingSettings } from "./5-next-token.js";

export const section = "#generate-section";

export function start() {
  const { max_new_tokens: tokens, seed } = state.limits.sampling;
  Object.assign($("#max-new-tokens"), { min: tokens.min, max: tokens.max, value: tokens.default });
  Object.assign($("#seed"), { min: seed.min, max: seed.max, value: seed.default });
  $("#generate-btn").addEventListener("click", generate);
  $("#stop-btn").addEventListener("click", () => state.generation && state.generation.abort());
}

// One Server-Sent Event per blank-line-ended block: "event: token\ndata: {...}". Yields [event, data].
async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      yield [/^event: (.*)$/m.exec(block)[1], JSON.parse(/^data: (.*)$/m.exec(block)[1])];
    }
  }
}

async function generate() {
  const output = $("#output .generated");
  const status = $("#gen-status");
  $("#output .prompt").textContent = $("#text").value;
  output.textContent = "";
  let settings;
  try { settings = samplingSettings(); } catch (error) { status.textContent = error.message; return; }
  const greedy = $("input[name=mode]:checked").value === "greedy";
  const body = {
    text: $("#text").value, max_new_tokens: Number($("#max-new-tokens").value), seed: Number($("#seed").value),
    ...(greedy ? { temperature: 0 } : settings),
  };
  const controller = new AbortController();
  state.generation = controller;
  $("#generate-btn").disabled = true;
  $("#stop-btn").disabled = false;
  status.textContent = "generating…";
  let pieces = 0;
  try {
    for await (const [event, data] of serverSentEvents(await request("/api/generate", body, controller.signal))) {
      if (event === "token") {
        output.textContent += data.text;
        pieces++;
      } else if (event === "done") {
        status.textContent = `${data.tokens} tokens in ${data.seconds.toFixed(2)} s ` +
          `(${Math.round(data.tokens / Math.max(data.seconds, 1e-6))} tokens/s)` +
          (greedy ? ", greedy" : `, sampled at τ = ${settings.temperature}, seed ${body.seed}`);
      }
    }
  } catch (error) {
    status.textContent = error.name === "AbortError" ? `stopped after ${pieces} tokens` : error.message;
  } finally {
    state.generation = null;
    $("#generate-btn").disabled = false;
    $("#stop-btn").disabled = true;
  }
}
