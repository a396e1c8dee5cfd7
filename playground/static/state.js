// Everything the page knows, declared once: every module reads and changes this one object.

export const state = {
  card: null,                      // GET /api/model: the checkpoint every panel shows
  limits: null,                    // GET /api/limits: every input's range and starting value
  page: null,                      // POST /api/page: what the typed text shows (tokens, attention, next, feedforward)
  keystroke: 0,                    // the latest keystroke's number: answers to older ones are dropped
  selected: { layer: 0, head: 0 }, // panels 4 and 4b: the head enlarged, and opened inside
  query: null,                     // panel 4b: {text, index}, the token whose query is followed in that text
  pickedToken: null,               // panel 2: the token whose neighbours are listed
  generation: null,                // panel 7: the running generation's AbortController
  training: null,                  // panel 9: GET /api/train's latest answer
  trainEvents: null,               // panel 9: the EventSource that follows a run
  history: null,                   // panel 9: GET /api/train/attention
};
