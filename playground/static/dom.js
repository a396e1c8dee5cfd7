// Small DOM helpers every panel uses: find, make, the tooltip, and a panel's own error line.

export const $ = (selector) => document.querySelector(selector);
export const $$ = (selector) => [...document.querySelectorAll(selector)];

// An HTML element with attributes and a text (or child nodes): el("li", { class: "near" }, "dog").
export function el(tag, attributes = {}, content) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (Array.isArray(content)) node.append(...content);
  else if (content !== undefined) node.textContent = content;
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A token chip. `shown` is the text the server sends with every token (␣ for a space, ⏎ for a newline: the
// lessons' labels, data/tokenization.py show_token), so the page never decides how a token looks.
export function chip(shown, id) {
  const span = el("span", { class: "chip" }, shown);
  if (id !== undefined) {
    span.title = `id ${id}`;
    span.dataset.id = id;
  }
  return span;
}

export function showTooltip(event, text) {
  const tip = $("#tooltip");
  tip.textContent = text;
  tip.style.left = `${event.clientX + 12}px`;
  tip.style.top = `${event.clientY + 12}px`;
  tip.hidden = false;
}

export function hideTooltip() {
  $("#tooltip").hidden = true;
}

// A panel's own error line, under its heading (null clears it): one failing panel says so and leaves the others.
export function panelError(section, message) {
  const panel = $(section);
  let line = panel.querySelector(":scope > .panel-error");
  if (!line) {
    line = el("div", { class: "panel-error", role: "alert" });
    panel.querySelector("h2").after(line);
  }
  line.hidden = !message;
  line.textContent = message || "";
}

// A panel whose input was refused: it says why under its heading and greys what it still shows (null: it is
// up to date again).
export function panelStale(section, message) {
  panelError(section, message);
  $(section).classList.toggle("stale", Boolean(message));
}

// Runs one panel's work (drawing, or its own requests); an error, thrown or awaited, goes to that panel's line,
// and what the panel showed before is greyed until its work succeeds again.
export async function guarded(section, work) {
  try {
    await work();
    panelStale(section, null);
  } catch (error) {
    panelStale(section, error.message);
  }
}
