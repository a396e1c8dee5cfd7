// The shared text box as the one-click experiments fill it: setText puts a text there (and a second sentence to
// compare with, or none), main.js redraws every panel of the text, and the promise resolves once they are drawn.
import { state } from "./state.js";

export function setText(text, second = null) {
  return new Promise((resolve) => {
    document.dispatchEvent(new CustomEvent("settext", { detail: { text, second, resolve } }));
  });
}

// A prompt where the model chooses the next word: a character model reads the space before it as a token of its
// own, so it gets the space typed (the lessons' rule, lessons/common.py before_next_word); a word or BPE model
// reads " glass" with its space, so the prompt stops before it.
export const beforeNextWord = (text) => (state.card.tokenizer.kind === "char" ? `${text} ` : text);
