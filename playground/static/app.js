// The playground page: asks the server's model about the typed text and draws what it answers.
// Plain JavaScript, no libraries: SVG for the charts, a canvas per small heatmap.
"use strict";

const $ = (selector) => document.querySelector(selector);
const SVG_NS = "http://www.w3.org/2000/svg";
const DEBOUNCE_MS = 200;

const state = {
  card: null,          // GET /api/model
  tokens: null,        // POST /api/page answers these three: as /api/tokens,
  attention: null,     // as /api/attention (or /api/compare in compare mode)
  next: null,          // and as /api/next
  selected: { layer: 0, head: 0 },
  request: 0,          // the latest update's number: answers to older ones are dropped
  generation: null,    // the AbortController of the running generation
};

// ---- the sampler's formula, as in model/sampling.py (next_token_probs) ----

// logits (V numbers) → probabilities at temperature τ, keeping only the top-k tokens and then the smallest set
// holding probability top-p. τ = 0 puts everything on the argmax (the first one on a tie, as torch.argmax).
function nextTokenProbs(logits, temperature, topK = null, topP = null) {
  const V = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return logits.map((_, i) => (i === best ? 1 : 0));
  }
  const max = logits.reduce((a, b) => (b > a ? b : a), -Infinity);
  let z = logits.map((l) => (l - max) / temperature);      // shifted by the largest: finite at any τ > 0
  if (topK !== null && topK < V) {
    const kth = [...z].sort((a, b) => b - a)[topK - 1];
    z = z.map((v) => (v < kth ? -Infinity : v));
  }
  let probs = z.map((v) => Math.exp(v));                   // p_i = exp(z_i/τ) / Σ_j exp(z_j/τ)
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (topP !== null && topP < 1) {
    const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    let before = 0;                                        // the mass of the likelier tokens
    const kept = new Array(V).fill(0);
    for (const [p, i] of order) {
      if (before < topP) kept[i] = p;                      // the top token always stays
      before += p;
    }
    total = kept.reduce((a, b) => a + b, 0);
    probs = kept.map((p) => p / total);
  }
  return probs;
}

// H(p) = −Σ p log₂ p, in bits.
function entropyBits(probs) {
  return -probs.reduce((h, p) => (p > 0 ? h + p * Math.log2(p) : h), 0);
}

// ---- talking to the server ----

async function api(path, body, signal) {
  const options = body === undefined ? { signal } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

const getJSON = async (path, body) => (await api(path, body)).json();

function sampling() {
  const topK = $("#top-k").value.trim();
  const topP = $("#top-p").value.trim();
  const k = topK === "" ? null : Number(topK);
  const p = topP === "" ? null : Number(topP);
  if (k !== null && !(Number.isInteger(k) && k >= 1)) throw new Error("top-k must be a whole number ≥ 1 (or empty: all tokens)");
  if (p !== null && !(p > 0 && p <= 1)) throw new Error("top-p must be in (0, 1] (or empty: 1)");
  return { temperature: Number($("#temperature").value), top_k: k, top_p: p };
}

function showError(message) {
  $("#error").hidden = !message;
  $("#error").textContent = message || "";
  for (const id of ["#tokens-section", "#attention-section", "#next-section"]) {
    $(id).classList.toggle("stale", Boolean(message));
  }
}

// ---- updates: everything the text decides ----

let timer = null;
function scheduleUpdate() {
  clearTimeout(timer);
  timer = setTimeout(update, DEBOUNCE_MS);
}

async function update() {
  const number = ++state.request;
  const text = $("#text").value;
  const second = $("#compare-toggle").checked ? $("#text-b").value : "";
  try {
    if (!text) throw new Error("type some text above: the model needs at least one token to look at");
    const body = { text, ...sampling(), k: 10, compare_with: second || null };
    const { tokens, attention, next } = await getJSON("/api/page", body);   // one forward pass answers all three
    if (number !== state.request) return;                  // a newer text is already on its way
    Object.assign(state, { tokens, attention, next });
    showError(null);
    renderTokens();
    renderAttention();
    renderBars();
    updateFeedForward(number);
  } catch (error) {
    if (number === state.request) showError(error.message);
  }
}

// ---- embeddings and positions (they do not depend on the text) ----

async function updateEmbeddings(token = state.pickedToken ?? null) {
  state.pickedToken = token;
  try {
    const view = await getJSON("/api/embeddings",
      { token, word_a: $("#word-a").value || "dog", word_b: $("#word-b").value || "cat" });
    renderEmbeddings(view);
  } catch (error) {
    $("#word-cosine").textContent = error.message;
  }
}

function scatter(map, points, W, H, label) {
  const pad = 24;
  map.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  map.replaceChildren(...points.map(([x, y], i) => label(i,
    (pad + (W - 2 * pad) * (x - x0) / Math.max(x1 - x0, 1e-9)).toFixed(1),
    (pad + (H - 2 * pad) * (1 - (y - y0) / Math.max(y1 - y0, 1e-9))).toFixed(1))));
}

function renderEmbeddings(view) {
  const near = new Set((view.neighbours || []).map((n) => n.id));
  scatter($("#embedding-map"), view.points, 560, 320, (id, x, y) => {
    const label = svg("text", { x, y, class: id === view.token ? "picked" : near.has(id) ? "near" : "", "data-id": id },
      visible(view.labels[id]));
    label.addEventListener("click", () => updateEmbeddings(id));
    return label;
  });
  const words = view.words_map;
  $("#words-map").hidden = !words;
  if (words) {
    scatter($("#words-map"), words.points, 560, 220,
      (i, x, y) => svg("text", { x, y, class: words.kinds[i] }, words.words[i]));
  }
  $("#embedding-explained").textContent = `${view.points.length} of ${view.vocab_size} tokens; these two directions ` +
    `hold ${(100 * view.explained).toFixed(0)}% of the table's variance.`;
  $("#neighbours").replaceChildren(...(view.neighbours || []).map((n) => {
    const li = document.createElement("li");
    li.textContent = `${visible(n.text)}  cos ${n.cosine.toFixed(3)}`;
    return li;
  }));
  const w = view.words;
  $("#word-cosine").textContent = `cos(${w.a}, ${w.b}): by spelling (mean of their tokens' rows) ` +
    `${w.spelling.toFixed(3)}; in context (the last layer's vector after "${w.frame.replace("{}", "…")}") ` +
    `${w.context.toFixed(3)}`;
}

async function updatePositions() {
  const view = await getJSON("/api/positions");
  const canvas = $("#pe-table");
  if (view.table) {
    const [T, C] = [view.table.length, view.table[0].length];
    Object.assign(canvas, { width: C, height: T, hidden: false });
    const context = canvas.getContext("2d");
    const image = context.createImageData(C, T);
    view.table.forEach((row, p) => row.forEach((v, i) => {
      const [r, g, b] = colour((v + 1) / 2);
      image.data.set([r, g, b, 255], 4 * (p * C + i));
    }));
    context.putImageData(image, 0, 0);
  } else {
    canvas.hidden = true;
  }
  const items = view.pair.map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.prompt} → ${visible(p.answer)}`;
    return li;
  });
  if (!view.table) {
    const li = document.createElement("li");
    li.textContent = "this model has no positions: both orders are the same bag of tokens to it";
    items.push(li);
  }
  $("#order-pair").replaceChildren(...items);
}

// ---- feed-forward ----

async function updateFeedForward(number) {
  const off = document.querySelector("input[name=ffn-off]:checked");
  const body = { text: $("#text").value, off: off && off.value !== "" ? Number(off.value) : null };
  try {
    const view = await getJSON("/api/feedforward", body);
    if (number === state.request) renderFeedForward(view);
  } catch (error) {
    if (number === state.request) showError(error.message);
  }
}

function renderFeedForward(view) {
  const blocks = view.change.length;
  if (document.querySelectorAll("input[name=ffn-off]").length !== blocks + 1) {   // a model with other blocks
    const choices = [["", "every FFN on"], ...[...Array(blocks).keys()].map((b) => [String(b), `block ${b} off`])];
    $("#ffn-off").replaceChildren(...choices.map(([value, text]) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "ffn-off", value, checked: value === "" });
      input.addEventListener("change", () => updateFeedForward(state.request));
      label.append(input, ` ${text}`);
      return label;
    }));
  }
  const largest = Math.max(1e-9, ...view.relative.flat());
  const table = document.createElement("table");
  const head = document.createElement("tr");
  head.append(document.createElement("th"), ...view.tokens.map((t) => {
    const th = document.createElement("th");
    th.textContent = visible(t.text);
    return th;
  }));
  table.append(head);
  view.change.forEach((row, b) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = `block ${b}`;
    tr.append(th, ...row.map((size, i) => {
      const td = document.createElement("td");
      const relative = view.relative[b][i];
      td.className = "ffn-cell";
      td.style.background = `rgb(${colour(relative / largest).join(",")})`;   // brightest: the largest here
      td.title = `‖FFN(x)‖ = ${size.toFixed(3)}, ${(100 * relative).toFixed(0)}% of the vector it is added to`;
      return td;
    }));
    table.append(tr);
  });
  $("#ffn-grid").replaceChildren(table);
  const list = (items) => items.map((t) => {
    const li = document.createElement("li");
    li.textContent = `${visible(t.text)}  ${(100 * t.prob).toFixed(1)}%`;
    li.dataset.prob = t.prob;
    return li;
  });
  $("#ffn-with").replaceChildren(...list(view.with_all));
  $("#ffn-without").replaceChildren(...(view.without ? list(view.without) : []));
  $("#ffn-without-title").textContent = view.off === null ? "next token, one FFN left out (choose a block)" :
    `next token, block ${view.off}'s FFN left out`;
}

// ---- 1. tokens ----

const visible = (token) => token.replace(/\n/g, "⏎").replace(/ /g, "␣").replace(/\t/g, "⇥");

function chip(text, id) {
  const span = document.createElement("span");
  span.className = "chip";
  span.textContent = visible(text);
  if (id !== undefined) {
    span.title = `id ${id}`;
    span.dataset.id = id;
  }
  return span;
}

function renderTokens() {
  const { tokens, count, context, tokenizer } = state.tokens;
  const box = $("#tokens");
  box.replaceChildren(...tokens.map((t) => {
    const span = chip(t.text, t.id);
    const small = document.createElement("small");
    small.textContent = t.id;
    span.appendChild(small);
    return span;
  }));
  $("#count").textContent = `${count} ${tokenizer} token${count === 1 ? "" : "s"} of the ${context}-token context`;
}

// ---- 2. attention ----

// A perceptual colour ramp (dark violet → blue → green → yellow, like viridis) for weights in [0, 1].
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(w) {
  const x = Math.min(Math.max(w, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}
const MASKED = [230, 232, 238];

function sentences() {
  const a = state.attention;
  return a.a ? [a.a, a.b] : [a];                         // compare mode holds two sentences
}

function thumbnail(rows) {
  const T = rows.length;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = T;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(T, T);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const [r, g, b] = j <= i ? colour(rows[i][j]) : MASKED;
      image.data.set([r, g, b, 255], 4 * (i * T + j));
    }
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function renderAttention() {
  const { n_layer, n_head } = state.attention;
  if (state.selected.layer >= n_layer || state.selected.head >= n_head) state.selected = { layer: 0, head: 0 };
  const first = sentences()[0];
  const grid = $("#attention-grid");
  grid.style.gridTemplateColumns = `auto repeat(${n_head}, auto)`;
  const cells = [];
  for (let l = 0; l < n_layer; l++) {
    const label = document.createElement("span");
    label.className = "layer-label";
    label.textContent = `block ${l}`;
    cells.push(label);
    for (let h = 0; h < n_head; h++) {
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.layer = l;
      cell.dataset.head = h;
      cell.classList.toggle("selected", l === state.selected.layer && h === state.selected.head);
      cell.appendChild(thumbnail(first.attention[l][h]));
      const caption = document.createElement("span");
      caption.textContent = `head ${h}`;
      cell.appendChild(caption);
      cell.addEventListener("click", () => { state.selected = { layer: l, head: h }; renderAttention(); });
      cells.push(cell);
    }
  }
  grid.replaceChildren(...cells);
  renderDetail();
  renderCosine();
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// One head enlarged: rows are the tokens looking (queries), columns the tokens looked at (keys).
function heatmap(tokens, rows, onRow) {
  const T = tokens.length;
  const cell = Math.max(8, Math.min(22, Math.floor(420 / T)));
  const margin = 14 + 7.5 * Math.min(6, Math.max(...tokens.map((t) => visible(t).length)));  // room for labels
  const size = margin + T * cell + 4;
  const root = svg("svg", { class: "heatmap", width: size, height: size, viewBox: `0 0 ${size} ${size}` });
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const [r, g, b] = j <= i ? colour(rows[i][j]) : MASKED;
      root.appendChild(svg("rect", { x: margin + j * cell, y: margin + i * cell, width: cell, height: cell,
        fill: `rgb(${r},${g},${b})`, "data-i": i, "data-j": j }));
    }
    const label = visible(tokens[i]).slice(0, 6);
    root.appendChild(svg("text", { x: margin - 4, y: margin + i * cell + cell * 0.72, "text-anchor": "end",
      class: "query-label" }, label));
    root.appendChild(svg("text", { x: 0, y: 0, "text-anchor": "start", class: "key-label",
      transform: `translate(${margin + i * cell + cell * 0.72}, ${margin - 4}) rotate(-90)` }, label));
  }
  const outline = svg("rect", { class: "row-hover", x: margin, width: T * cell, height: cell, visibility: "hidden" });
  root.appendChild(outline);
  root.addEventListener("mousemove", (event) => {
    const target = event.target;
    if (target.dataset.i === undefined) return hideTooltip();
    const i = Number(target.dataset.i), j = Number(target.dataset.j);
    const w = j <= i ? rows[i][j] : 0;
    showTooltip(event, `${JSON.stringify(tokens[i])} looks at ${JSON.stringify(tokens[j])}: ` +
      (j <= i ? w.toFixed(3) : "masked (future)"));
    outline.setAttribute("y", margin + i * cell);
    outline.setAttribute("visibility", "visible");
    onRow(i);
  });
  root.addEventListener("mouseleave", () => { hideTooltip(); outline.setAttribute("visibility", "hidden"); onRow(null); });
  return root;
}

// BertViz's head view, as shading: hover a token and every token it looks at lights up by its weight.
function headView(tokens, rows) {
  const box = document.createElement("div");
  box.className = "chips headview";
  const chips = tokens.map((t) => chip(t));
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
  box.replaceChildren(...chips);
  return { box, show };
}

function renderDetail() {
  const { layer, head } = state.selected;
  const figures = sentences().map((s) => {
    const rows = s.attention[layer][head];
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = `block ${layer}, head ${head}: ${JSON.stringify(s.tokens.join(""))}`;
    const view = headView(s.tokens, rows);
    figure.append(caption, heatmap(s.tokens, rows, view.show), view.box);
    return figure;
  });
  $("#attention-detail").replaceChildren(...figures);
}

function renderCosine() {
  const compare = state.attention.cosine !== undefined;
  $("#cosine-view").hidden = !compare;
  if (!compare) return;
  const { a, b, cosine, first_difference: firstDifference } = state.attention;
  $("#cosine").replaceChildren(...cosine.map((c, i) => {
    const cell = document.createElement("div");
    cell.className = "cos-cell";
    const shade = Math.max(0, Math.min(1, (1 - c) * 1.5));    // 1 → white, lower → darker red
    cell.style.background = `rgba(201, 42, 42, ${shade.toFixed(3)})`;
    cell.style.color = shade > 0.55 ? "#fff" : "";
    cell.title = `position ${i}: ${JSON.stringify(a.tokens[i])} / ${JSON.stringify(b.tokens[i])}` +
      (i < firstDifference ? " (the texts agree up to here)" : "");
    const top = document.createElement("span");
    top.textContent = visible(a.tokens[i]);
    const bottom = document.createElement("span");
    bottom.textContent = visible(b.tokens[i]);
    const value = document.createElement("b");
    value.textContent = c.toFixed(2);
    cell.append(top, bottom, value);
    return cell;
  }));
}

// ---- 3. next token ----

function renderBars() {
  if (!state.next) return;
  let settings;
  try { settings = sampling(); } catch (error) { showError(error.message); return; }
  const { temperature, top_k: topK, top_p: topP } = settings;
  $("#temperature-value").textContent = temperature.toFixed(2);
  const probs = nextTokenProbs(state.next.logits, temperature, topK, topP);
  const rowHeight = 24, labelWidth = 90, width = 460;
  const bars = $("#bars");
  bars.setAttribute("viewBox", `0 0 ${width} ${state.next.top.length * rowHeight}`);
  bars.setAttribute("height", state.next.top.length * rowHeight);
  const nodes = [];
  state.next.top.forEach((t, r) => {
    const p = probs[t.id];
    const y = r * rowHeight;
    const barWidth = (width - labelWidth - 60) * p;
    nodes.push(svg("text", { x: labelWidth - 6, y: y + 16, "text-anchor": "end" }, JSON.stringify(t.text)));
    nodes.push(svg("rect", { class: "track", x: labelWidth, y: y + 4, width: width - labelWidth - 60, height: 16 }));
    nodes.push(svg("rect", { class: "bar", x: labelWidth, y: y + 4, width: barWidth, height: 16,
      "data-token": t.text, "data-prob": p }));
    nodes.push(svg("text", { x: labelWidth + barWidth + 4, y: y + 16 }, `${(100 * p).toFixed(1)}%`));
  });
  bars.replaceChildren(...nodes);
  const h = entropyBits(probs);
  $("#entropy").textContent = `entropy ${h.toFixed(3)} bits (0 = certain; at most log₂ ${probs.length} = ` +
    `${Math.log2(probs.length).toFixed(2)} bits when every token is equally likely)`;
  $("#entropy").dataset.bits = h;
}

// ---- 4. generate ----

async function generate() {
  const output = $("#output .generated");
  $("#output .prompt").textContent = $("#text").value;
  output.textContent = "";
  let settings;
  try { settings = sampling(); } catch (error) { $("#gen-status").textContent = error.message; return; }
  const greedy = document.querySelector("input[name=mode]:checked").value === "greedy";
  const body = {
    text: $("#text").value, max_new_tokens: Number($("#max-new-tokens").value), seed: Number($("#seed").value),
    ...(greedy ? { temperature: 0 } : settings),
  };
  const controller = new AbortController();
  state.generation = controller;
  $("#generate-btn").disabled = true;
  $("#stop-btn").disabled = false;
  $("#gen-status").textContent = "generating…";
  let pieces = 0;
  try {
    const response = await api("/api/generate", body, controller.signal);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {          // one Server-Sent Event per blank-line-ended block
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)[1]);
        if (event === "token") {
          output.textContent += data.text;
          pieces++;
        } else if (event === "done") {
          $("#gen-status").textContent = `${data.tokens} tokens in ${data.seconds.toFixed(2)} s ` +
            `(${Math.round(data.tokens / Math.max(data.seconds, 1e-6))} tokens/s)` +
            (greedy ? ", greedy" : `, sampled at τ = ${settings.temperature}, seed ${body.seed}`);
        }
      }
    }
  } catch (error) {
    $("#gen-status").textContent = error.name === "AbortError" ? `stopped after ${pieces} tokens` : error.message;
  } finally {
    state.generation = null;
    $("#generate-btn").disabled = false;
    $("#stop-btn").disabled = true;
  }
}

// ---- 5. model card ----

function renderCard(card) {
  const m = card.model;
  const val = card.best_val_loss === null ? "not measured" : card.best_val_loss.toFixed(4);
  $("#card-summary").textContent = `${card.checkpoint} · ${m.n_layer} blocks × ${m.n_head} heads, width ` +
    `${m.n_embd} · ${card.parameters.toLocaleString("en")} parameters · ${card.tokenizer.kind} tokenizer ` +
    `(${card.tokenizer.vocab_size} tokens) · trained ${card.step} steps · best val loss ${val}`;
  const rows = [
    ["checkpoint", card.checkpoint],
    ["parameters", card.parameters.toLocaleString("en")],
    ["tokenizer", `${card.tokenizer.kind}, ${card.tokenizer.vocab_size} tokens`],
    ["context (block_size)", `${m.block_size} tokens`],
    ["blocks × heads", `${m.n_layer} × ${m.n_head} (head size ${m.head_size})`],
    ["width (n_embd)", m.n_embd],
    ["feed-forward width", `${m.ffn_mult} × ${m.n_embd} = ${m.ffn_mult * m.n_embd}`],
    ["positions", m.positional],
    ["dropout", m.dropout],
    ["trained on", card.data.path],
    ["training steps", `${card.step} of ${card.train.max_iters} (batch ${card.train.batch_size}, lr ${card.train.lr})`],
    ["best validation loss", val],
    ["device", card.device],
  ];
  $("#model-card").replaceChildren(...rows.map(([key, value]) => {
    const tr = document.createElement("tr");
    const k = document.createElement("td");
    const v = document.createElement("td");
    k.textContent = key;
    v.textContent = value;
    tr.append(k, v);
    return tr;
  }));
}

// ---- 6. train ----

function knobs() {
  const corpus = document.querySelector("input[name=corpus]:checked").value;
  const body = {
    corpus, n_layer: Number($("#train-layers").value), n_head: Number($("#train-heads").value),
    n_embd: Number($("#train-width").value), max_iters: Number($("#train-steps").value),
    lr: Number($("#train-lr").value), positional: $("#train-positions").checked ? "sinusoidal" : "none",
  };
  if (corpus === "text") body.text = $("#train-text").value;
  return body;
}

async function trainAction(path, body) {
  try {
    const answer = await getJSON(path, body);
    if (answer.run) state.run = answer.run;
    watchTraining();
  } catch (error) {
    $("#train-status").textContent = error.message;
  }
}

function watchTraining() {
  if (state.trainEvents && state.trainEvents.readyState !== EventSource.CLOSED) return;   // already listening
  const events = new EventSource("/api/train/events");
  state.trainEvents = events;
  events.addEventListener("status", (event) => renderTraining(JSON.parse(event.data)));
  events.onerror = () => events.close();           // the stream ends with the run; the last status stays shown
}

function renderTraining(status) {
  state.training = status;
  const training = status.state === "training";
  $("#train-btn").disabled = training;
  $("#train-stop-btn").disabled = !training;
  $("#train-resume-btn").disabled = training || status.state !== "stopped";
  $("#train-use-btn").disabled = !status.checkpoint;
  const last = status.losses && status.losses.length ? status.losses[status.losses.length - 1] : null;
  $("#train-status").textContent = status.state === "idle" ? "" :
    `run ${status.run}: ${training ? "training" : status.outcome}` +
    (last ? ` · step ${last.iter}, loss ${last.loss.toFixed(3)}` : "");
  drawLoss(status.losses || [], status.evals || []);
  drawProbes(status.probes || []);
  const steps = status.attention_steps || [];
  if (steps.length && steps.length !== (state.history ? state.history.snapshots.length : 0)) loadHistory();
}

async function loadHistory() {
  const slider = $("#history-step");
  const atEnd = !state.history || Number(slider.value) === state.history.snapshots.length - 1;
  state.history = await getJSON("/api/train/attention");
  const n = state.history.snapshots.length;
  $("#history").hidden = n === 0;
  $("#history-sentence").textContent = `"${state.history.sentence}"`;
  slider.max = Math.max(0, n - 1);
  if (atEnd) slider.value = slider.max;
  renderHistory();
}

function renderHistory() {
  const snapshot = state.history.snapshots[Number($("#history-step").value)];
  if (!snapshot) return;
  $("#history-label").textContent = `step ${snapshot.step}`;
  const grid = $("#history-grid");
  const heads = snapshot.attention[0].length;
  grid.style.gridTemplateColumns = `auto repeat(${heads}, auto)`;
  const cells = [];
  snapshot.attention.forEach((layer, l) => {
    const label = document.createElement("div");
    label.className = "layer-label";
    label.textContent = `block ${l}`;
    cells.push(label, ...layer.map((rows, h) => {
      const cell = document.createElement("div");
      cell.className = "history-cell";
      cell.append(thumbnail(rows), `head ${h}`);
      return cell;
    }));
  });
  grid.replaceChildren(...cells);
}

function drawLoss(losses, evals) {
  const chart = $("#loss-chart");
  const W = 460, H = 220, left = 40, bottom = 24, top = 10, right = 10;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const points = [...losses.map((m) => [m.iter, m.loss]), ...evals.map((e) => [e.iter, e.val])];
  if (!points.length) { chart.replaceChildren(svg("text", { x: left, y: H / 2 }, "the loss appears here")); return; }
  const maxX = Math.max(...points.map((p) => p[0])), maxY = Math.max(...points.map((p) => p[1]));
  const x = (v) => left + (W - left - right) * v / Math.max(maxX, 1);
  const y = (v) => top + (H - top - bottom) * (1 - v / Math.max(maxY, 1e-9));
  const children = [
    svg("line", { x1: left, y1: y(0), x2: W - right, y2: y(0), stroke: "#ccd" }),
    svg("line", { x1: left, y1: top, x2: left, y2: y(0), stroke: "#ccd" }),
    svg("text", { x: 4, y: top + 10 }, maxY.toFixed(1)), svg("text", { x: 4, y: y(0) }, "0"),
    svg("text", { x: W - right - 60, y: H - 6 }, `step ${maxX}`),
    svg("text", { x: left + 6, y: top + 12 }, "train loss (line) · val loss (dots)"),
  ];
  if (losses.length) {
    children.push(svg("polyline", { class: "train-line",
      points: losses.map((m) => `${x(m.iter).toFixed(1)},${y(m.loss).toFixed(1)}`).join(" ") }));
  }
  for (const e of evals) children.push(svg("circle", { class: "val-dot", cx: x(e.iter), cy: y(e.val), r: 3 }));
  chart.replaceChildren(...children);
}

function drawProbes(probes) {
  const head = document.createElement("tr");
  for (const title of ["question", "the model answers", "P(right answer)"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  const rows = probes.map((p) => {
    const tr = document.createElement("tr");
    const question = document.createElement("td");
    question.textContent = `${p.prompt} → ${visible(p.expected)}?`;
    const answer = document.createElement("td");
    answer.className = "answer" + (p.answer.startsWith(p.expected) ? " right" : "");
    answer.textContent = visible(p.answer);
    const prob = document.createElement("td");
    if (p.p_expected !== null) {
      const meter = document.createElement("div");
      meter.className = "meter";
      const fill = document.createElement("div");
      fill.style.width = `${(100 * p.p_expected).toFixed(1)}%`;
      meter.append(fill);
      prob.append(meter, ` ${p.p_expected.toFixed(3)} at step ${p.step}`);
      prob.dataset.p = p.p_expected;
    }
    tr.append(question, answer, prob);
    return tr;
  });
  $("#probes").replaceChildren(head, ...rows);
}

async function useTrainedModel() {
  try {
    state.card = await getJSON("/api/checkpoint", { run: state.training.run, which: "best" });
    renderCard(state.card);
    $("#top-k").max = state.card.tokenizer.vocab_size;
    update();
    updateEmbeddings(null);
    updatePositions();
  } catch (error) {
    $("#train-status").textContent = error.message;
  }
}

// ---- tooltip ----

function showTooltip(event, text) {
  const tip = $("#tooltip");
  tip.textContent = text;
  tip.style.left = `${event.clientX + 12}px`;
  tip.style.top = `${event.clientY + 12}px`;
  tip.hidden = false;
}
function hideTooltip() { $("#tooltip").hidden = true; }

// ---- start ----

async function start() {
  try {
    state.card = await getJSON("/api/model");
  } catch (error) {
    showError(`cannot reach the model: ${error.message}`);
    return;
  }
  renderCard(state.card);
  $("#top-k").max = state.card.tokenizer.vocab_size;
  $("#text").value = state.card.sample.prompt;
  $("#text").addEventListener("input", scheduleUpdate);
  $("#text-b").addEventListener("input", scheduleUpdate);
  $("#compare-toggle").addEventListener("change", () => {
    $("#compare-input").hidden = !$("#compare-toggle").checked;
    $("#attention-section").classList.toggle("wide", $("#compare-toggle").checked);   // two heatmaps side by side
    if ($("#compare-toggle").checked && !$("#text").value.trim()) $("#text").value = "He broke the glass.";
    update();
  });
  for (const id of ["#temperature", "#top-k", "#top-p"]) $(id).addEventListener("input", renderBars);
  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => { $("#text").value = button.textContent; update(); });
  }
  $("#generate-btn").addEventListener("click", generate);
  $("#stop-btn").addEventListener("click", () => state.generation && state.generation.abort());
  for (const radio of document.querySelectorAll("input[name=corpus]")) {
    radio.addEventListener("change", () => { $("#train-text").hidden = radio.value !== "text" || !radio.checked; });
  }
  $("#train-btn").addEventListener("click", () => trainAction("/api/train", knobs()));
  $("#train-stop-btn").addEventListener("click", () => trainAction("/api/train/stop", {}));
  $("#train-resume-btn").addEventListener("click", () => trainAction("/api/train/resume", { run: state.training.run }));
  $("#train-use-btn").addEventListener("click", useTrainedModel);
  $("#history-step").addEventListener("input", renderHistory);
  for (const id of ["#word-a", "#word-b"]) $(id).addEventListener("change", () => updateEmbeddings());
  updateEmbeddings(null);
  updatePositions();
  renderTraining(await getJSON("/api/train"));
  if (state.training.state === "training") watchTraining();
  update();
}

start();
