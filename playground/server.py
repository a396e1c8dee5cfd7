"""The playground's web server: a JSON API over ``playground.views`` and the static page that uses it.

The checkpoint is chosen when the app is made, or switched to a run of the runs folder named in a request (no
endpoint reads a path from a request: ``playground.models``). Every request body is
checked before the model runs: bad JSON, wrong types, out-of-range numbers, a body over ``MAX_BODY_BYTES``, text the
tokenizer cannot encode or longer than the context each get a 4xx answer ``{"error": "<one line>"}``, never a 500 or
a traceback. Endpoints are plain functions, so the server runs them in its thread pool and the page stays
responsive while a long generation streams; the model is only read, never changed, so threads can share it.

API (described by /openapi.json; FastAPI's /docs page is turned off, since it loads its scripts from a CDN and the
page must work offline):

    GET  /api/model        the model card
    GET  /api/limits       every input's range and starting value (sampling, generation, the Train panel)
    POST /api/tokens       {"text"} → tokens with their ids
    POST /api/attention    {"text"} → every block's and head's attention weights
    POST /api/compare      {"text_a", "text_b"} → both attention stacks and the per-position cosine
    POST /api/next         {"text", "temperature", "top_k", "top_p", "k"} → next-token distribution and logits
    POST /api/page         {"text", "compare_with", "ffn_off", "head"} → what one keystroke shows, from one forward
                           pass: the tokens, the attention (or the comparison), the next token's logits (the page
                           applies its temperature, top-k and top-p itself), the feed-forward view and, with "head"
                           ({"block", "head", "query"}), what POST /api/head answers
    POST /api/head         {"text", "block", "head", "query"} → inside that head for that token (null: the last):
                           its input, q, k, v, scores, weights, output and the projection added to the stream
    POST /api/feedforward  {"text", "off"} → each FFN's change per token; the next token with block "off"'s FFN out
                           (what the page asks when a block's FFN is switched off or on)
    POST /api/embeddings   {"token", "word_a", "word_b", "word_c", "text"} → the embedding table in 2-D (the first
                           1,000 ids, the text's tokens, the token and its neighbours), neighbours, word_a's cosine
                           with word_b and with word_c
    GET  /api/positions    the position table (at most 256 rows) and the word-order pair's answers
    POST /api/generate     {"text", "max_new_tokens", "temperature", "top_k", "top_p", "seed"} → Server-Sent Events
    GET  /api/health       liveness, and how many generations are running
    POST /api/train        {"corpus": "toy" | "text", "text", "n_layer", "n_head", "n_embd", "max_iters", "lr",
                           "positional", "tokenizer": "word" | "char", "seed"} → a new run trained in the background
                           (409 while another trains)
    POST /api/train/stop   stop it as Ctrl-C would (saved, resumable)
    POST /api/train/resume {"run"} → continue a stopped run exactly
    GET  /api/train/attention  one sentence's attention at each checkpoint seen so far (a step slider)
    GET  /api/train        the run's state, losses, evaluations, probe answers (at step 0 and at every checkpoint),
                           elapsed time and time left; /api/train/events streams them
    POST /api/train/variant {"run", "positional"} → a new run with that page run's settings and other positions
    GET  /api/runs         every run under the runs folder with metrics, by name, as the Runs panel lists them
    POST /api/runs/compare {"runs": [names]} → each run's train and val loss curves (from its metrics.jsonl), the
                           config keys whose values differ between them, and each toy run's toy-fact score
    GET  /api/models       the models the page can switch to: every run under the runs folder with a best.pt,
                           by name ("toy_words", "toy", "playground/<id>"), and the start-up one
    POST /api/checkpoint   {"run", "which": "best" | "last"} → every view switches to that run's checkpoint (a name
                           GET /api/models lists, or a page run's id); {"run": null} goes back to the checkpoint the
                           server started with
"""
import json
import threading
from pathlib import Path
from typing import Annotated

import orjson

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from core.config import MAX_SEED
from errors import UserError
from inference import Loaded, load_for_inference
from model.sampling import MAX_TOP_P, MIN_TEMPERATURE, MIN_TOP_K, TOP_P_ABOVE
from playground import views
from playground.feed import StatusFeed
from playground.guard import BodyLimit, HostGuard
from playground.limits import MAX_LISTED, MAX_NEW_TOKENS, MAX_TEMPERATURE, NEW_TOKENS, SEED, limits_view
from playground.live import KNOB_LIMITS, POSITIONAL, RUN_ID, TOKENIZERS, Busy, Knobs, LiveTraining, default_knobs
from playground.models import PAGE_RUNS, Models, NotListed
from playground.runs import MAX_COMPARED, Runs

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 256 * 1024
MAX_TEXT_CHARS = 20_000


class Strict(BaseModel):
    """Request bodies: no unknown fields, no silent type conversions ("1" is not a number), no NaN."""
    model_config = ConfigDict(strict=True, extra="forbid")


Text = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="the text typed into the page")


class TextRequest(Strict):
    text: str = Text


class CompareRequest(Strict):
    text_a: str = Text
    text_b: str = Text


class Sampling(Strict):
    """The sampling arguments, in the ranges of ``model.sampling`` and ``playground.limits``."""
    text: str = Text
    temperature: float = Field(1.0, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False,
                               description="0 = greedy (argmax)")
    top_k: int | None = Field(None, ge=MIN_TOP_K, description="keep only the k likeliest tokens")
    top_p: float | None = Field(None, gt=TOP_P_ABOVE, le=MAX_TOP_P, allow_inf_nan=False,
                                description="keep the likeliest tokens holding this much probability")


class NextRequest(Sampling):
    k: int = Field(views.LISTED, ge=1, le=MAX_LISTED, description="how many of the likeliest tokens to list")


def block_left_out():
    return Field(None, ge=0, description="a block whose feed-forward network is left out")


class HeadChoice(Strict):
    """One head of one block, and the token whose query it follows."""
    block: int = Field(ge=0, description="a block of the model, 0..n_layer-1")
    head: int = Field(ge=0, description="a head of that block, 0..n_head-1")
    query: int | None = Field(None, ge=0, description="the token (0..tokens-1) whose query is followed; null: the last")


class HeadRequest(HeadChoice):
    text: str = Text


class PageRequest(Strict):
    """One keystroke: the text, and what the page's switches add. No sampling arguments: the page applies them to
    the logits itself."""
    text: str = Text
    compare_with: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS,
                                     description="a second text to compare with (attention and cosine)")
    ffn_off: int | None = block_left_out()
    head: HeadChoice | None = Field(None, description="a head to show from the inside (as POST /api/head)")


class FeedForwardRequest(Strict):
    text: str = Text
    off: int | None = block_left_out()


class EmbeddingsRequest(Strict):
    token: int | None = Field(None, ge=0, description="a token id whose nearest neighbours to list")
    word_a: str = Field("dog", min_length=1, max_length=40)
    word_b: str = Field("cat", min_length=1, max_length=40)
    word_c: str = Field("banana", min_length=1, max_length=40)
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS,
                             description="the typed text, whose tokens the map draws too")


def knob(name: str, **more):
    """A Train panel number: its range ``KNOB_LIMITS``'s, its default the toy config's (read when first needed)."""
    low, high = KNOB_LIMITS[name]
    bounds = {"gt": low} if name == "lr" else {"ge": low}           # a learning rate of 0 would learn nothing
    return Field(default_factory=lambda: getattr(default_knobs(), name), **bounds, le=high, **more)


class TrainRequest(Strict):
    corpus: str = Field("toy", pattern="^(toy|text)$", description="the toy corpus, or the text given here")
    text: str | None = Field(None, max_length=MAX_BODY_BYTES, description="with corpus \"text\": what to train on")
    n_layer: int = knob("n_layer")
    n_head: int = knob("n_head")
    n_embd: int = knob("n_embd")
    max_iters: int = knob("max_iters")
    lr: float = knob("lr", allow_inf_nan=False)
    seed: int = knob("seed", description="the seed of the initial weights and of the batches: the same seed, the "
                                         "same run")
    positional: str = Field(default_factory=lambda: default_knobs().positional, pattern=f"^({'|'.join(POSITIONAL)})$")
    tokenizer: str = Field(default_factory=lambda: default_knobs().tokenizer, pattern=f"^({'|'.join(TOKENIZERS)})$",
                           description="a token per word, digit and mark, or per character")


class RunRequest(Strict):
    run: str = Field(min_length=1, max_length=40)


class VariantRequest(Strict):
    run: str = Field(min_length=1, max_length=40, description="a page run's id, as POST /api/train answers it")
    positional: str = Field(pattern=f"^({'|'.join(POSITIONAL)})$", description="the new run's positions")


class CompareRunsRequest(Strict):
    runs: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=MAX_COMPARED,
                            description="run names as GET /api/runs lists them (never paths)")


class CheckpointRequest(Strict):
    run: str | None = Field(max_length=100, description="a run's name as GET /api/models lists it (or a page run's "
                                                         "id), or null: the start-up one")
    which: str = Field("best", pattern="^(best|last)$")


class GenerateRequest(Sampling):
    max_new_tokens: int = Field(NEW_TOKENS, ge=1, le=MAX_NEW_TOKENS)
    seed: int = Field(SEED, ge=0, le=MAX_SEED, description="the same seed gives the same text")


class FastJSON(JSONResponse):
    """JSON written by orjson, NumPy arrays included: the attention tables are the largest answers, and going
    through ``tolist()`` and the standard library's encoder took most of their time (docs/playground-log.md)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def describe(problem: dict) -> str:
    """One line from one of pydantic's validation errors: "temperature: Input should be less than or equal to 2"."""
    where = ".".join(str(part) for part in problem["loc"] if part != "body")
    if problem["type"] == "json_invalid":
        return f"the request body is not valid JSON ({problem.get('ctx', {}).get('error', 'cannot parse it')})"
    if problem["type"] == "model_attributes_type":
        return "the request body must be a JSON object"
    if problem["type"] == "missing" and not where:
        return "the request needs a JSON body"
    if problem["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    return f"{where}: {problem['msg']}" if where else problem["msg"]


class Generations:
    """How many generations run now and how those that ended ended (for /api/health and the tests)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.completed = self.stopped = self.pieces = 0

    def start(self):
        with self.lock:
            self.running += 1

    def finish(self, pieces: int, complete: bool):
        with self.lock:
            self.running -= 1
            self.pieces += pieces
            if complete:
                self.completed += 1
            else:
                self.stopped += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {"running": self.running, "completed": self.completed, "stopped_early": self.stopped,
                    "pieces_streamed": self.pieces}


def server_sent(events):
    """(event, data) pairs in the text/event-stream format, "event: token" then "data: {...}" and a blank line."""
    for event, data in events:
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Current:
    """The checkpoint every view reads: the one the server started with, or a run of the runs folder. A request
    takes it once at its start, so a switch never mixes two models in one answer. ``path``: its file, resolved
    (None for a model that is not one file, such as hf:gpt2)."""

    def __init__(self, loaded: Loaded, checkpoint: str, path: Path | None):
        self.loaded, self.card, self.path = loaded, views.model_card(loaded, checkpoint), path


def file_of(checkpoint: str) -> Path | None:
    path = Path(checkpoint)
    return path.resolve() if path.is_file() else None


def event_stream(events) -> StreamingResponse:
    """(event, data) pairs as a text/event-stream answer that no proxy buffers or caches."""
    return StreamingResponse(server_sent(events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def create_app(loaded: Loaded, checkpoint: str, runs_root: str | Path = "runs", host: str = "127.0.0.1",
               port: int | None = None) -> FastAPI:
    """The app for one checkpoint, loaded once (``checkpoint`` is only shown on the model card); runs trained
    from the page go under ``runs_root``/playground. It answers requests that name ``host`` (or localhost, or an IP
    address) and ``port`` (None: any), see ``playground.guard``. ``app.state.shutdown()`` stops the run training
    (it saves) and ends the event streams: the server calls it when it is asked to stop."""
    app = FastAPI(title="Gen AI Learn Playground",
                  description="The learner's own model, step by step: tokens, attention, the next-token "
                              "distribution and generation, computed by the checkpoint the server was started with.",
                  docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(HostGuard, listen_host=host, port=port)          # the outermost: checked first
    generations = Generations()
    startup = current = Current(loaded, checkpoint, file_of(checkpoint))
    live = app.state.live = LiveTraining(Path(runs_root))
    models = Models(Path(runs_root), lambda name: bool(RUN_ID.match(name)))
    runs = Runs(Path(runs_root), lambda name: bool(RUN_ID.match(name)), loaded.device.type)
    feed = StatusFeed(lambda: live.status(current.loaded.device.type))

    def shutdown():
        live.stop()
        feed.close()
    app.state.shutdown = shutdown

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and any(p["loc"] == ("body",) for p in problems):
            # refusing other content types also keeps other web sites from posting to this server as a form
            return error(415, "send the request body as JSON, with the header Content-Type: application/json")
        status = 400 if any(p["type"] == "json_invalid" for p in problems) else 422
        return error(status, "; ".join(dict.fromkeys(describe(p) for p in problems)))

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return error(409 if isinstance(exc, Busy) else 404 if isinstance(exc, NotListed) else 400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request, exc: Exception):
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    def check_top_k(loaded: Loaded, top_k: int | None):
        vocab_size = loaded.tokenizer.vocab_size
        if top_k is not None and top_k > vocab_size:
            raise UserError(f"top_k: must be at most the vocabulary size, {vocab_size} (got {top_k})")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/model", summary="The model card: config, size, tokenizer, training step and val loss")
    def model():
        return current.card

    @app.get("/api/limits", summary="Every input's range and starting value: sampling, generation, the Train panel")
    def limits():
        return limits_view(current.loaded.tokenizer.vocab_size)

    @app.get("/api/health", summary="Liveness, and the generations running now")
    def health():
        return {"status": "ok", "generations": generations.snapshot()}

    @app.post("/api/tokens", summary="The text split into tokens, each with its id")
    def tokens(body: TextRequest):
        return FastJSON(views.tokens_view(current.loaded, body.text))

    @app.post("/api/attention", summary="Every block's and head's attention weights (row i: query i on keys 0..i)")
    def attention(body: TextRequest):
        return FastJSON(views.attention_view(current.loaded, body.text))

    @app.post("/api/compare", summary="Two texts' attention and the cosine of their last-layer vectors per position")
    def compare(body: CompareRequest):
        return FastJSON(views.compare_view(current.loaded, body.text_a, body.text_b))

    @app.post("/api/next", summary="The next-token distribution at a temperature, with its entropy and the logits")
    def next_token(body: NextRequest):
        loaded = current.loaded
        check_top_k(loaded, body.top_k)
        return FastJSON(views.next_token_view(loaded, body.text, body.temperature, body.top_k, body.top_p, body.k))

    @app.post("/api/page", summary="What one keystroke on the page shows, from one forward pass: tokens, attention "
                                    "(or the comparison), the next token's logits and the feed-forward view")
    def page_data(body: PageRequest):
        head = (body.head.block, body.head.head, body.head.query) if body.head is not None else None
        return FastJSON(views.page_view(current.loaded, body.text, body.compare_with, body.ffn_off, head))

    @app.post("/api/head", summary="Inside one head for one token: its input, q, k, v, scores, weights, output and "
                                   "projection, from the model's own forward pass")
    def inside_head(body: HeadRequest):
        return FastJSON(views.head_view(current.loaded, body.text, body.block, body.head, body.query))

    @app.post("/api/feedforward", summary="Each block's feed-forward change per token, and the next token with one "
                                         "block's feed-forward network left out")
    def feedforward(body: FeedForwardRequest):
        return FastJSON(views.feedforward_view(current.loaded, body.text, body.off))

    @app.post("/api/embeddings", summary="The embedding table in 2-D (PCA), a token's nearest neighbours, and the "
                                        "cosine of two words by spelling and in context")
    def embeddings(body: EmbeddingsRequest):
        return FastJSON(views.embeddings_view(current.loaded, body.token, body.word_a, body.word_b,
                                                   body.word_c, text=body.text))

    @app.get("/api/positions", summary="The sinusoidal position table, and the answers to one sentence in two word "
                                      "orders")
    def positions():
        return FastJSON(views.positions_view(current.loaded))

    @app.post("/api/generate", summary="A continuation, streamed token by token as Server-Sent Events")
    def generate(body: GenerateRequest):
        loaded = current.loaded
        check_top_k(loaded, body.top_k)
        events = views.generation_events(loaded, body.text, body.max_new_tokens, body.temperature, body.top_k,
                                         body.top_p, body.seed, generations.start, generations.finish)
        return event_stream(events)

    @app.post("/api/train", summary="Train a new model in the background, on the toy corpus or the text given")
    def train(body: TrainRequest):
        if (body.corpus == "text") != (body.text is not None):
            raise UserError('text: give the text to train on with corpus "text", and only then')
        knobs = Knobs(body.n_layer, body.n_head, body.n_embd, body.max_iters, body.lr, body.positional,
                      body.tokenizer, body.seed)
        run = live.start(knobs, body.text)
        feed.changed()
        return {"run": run}

    @app.post("/api/train/stop", summary="Stop the training run as Ctrl-C would: it saves first, Resume continues")
    def train_stop():
        return {"stopping": live.stop()}

    @app.post("/api/train/resume", summary="Continue a stopped run exactly where it stopped")
    def train_resume(body: RunRequest):
        live.resume(body.run)
        feed.changed()
        return {"run": body.run}

    @app.post("/api/train/variant", summary="Train again with a page run's settings and other positions")
    def train_variant(body: VariantRequest):
        run = live.variant(body.run, body.positional)
        feed.changed()
        return {"run": run}

    @app.get("/api/train", summary="The run's state, losses, evaluations and the probe questions' answers")
    def train_status():
        return live.status(current.loaded.device.type)

    @app.get("/api/train/events", summary="/api/train as Server-Sent Events, each time it changes, until the run ends")
    async def train_events():
        async def events():             # on the event loop: a listener holds no thread (playground.feed)
            async for status in feed.follow():
                yield f"event: status\ndata: {json.dumps(status, ensure_ascii=False)}\n\n"
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/train/attention", summary="The attention of one fixed sentence at each checkpoint the run saved")
    def train_attention():
        return FastJSON(live.attention_history())

    @app.get("/api/runs", summary="Every run of the runs folder with metrics, by name: what the Runs panel lists")
    def list_runs():
        training = live.training()
        return {"runs": runs.listing(f"{PAGE_RUNS}/{training}" if training else None)}

    @app.post("/api/runs/compare", summary="Runs side by side: loss curves, the config keys that differ, toy facts")
    def compare_runs(body: CompareRunsRequest):
        return FastJSON(runs.compare(body.runs))

    @app.get("/api/models", summary="The models the page can switch to: each run of the runs folder with a best "
                                    "checkpoint, by name, and the start-up one")
    def list_models():
        shown, training = current, live.training()
        listed, startup_listed = [], False
        for entry in models.listing():
            path = entry.pop("checkpoint").resolve()
            startup_listed |= path == startup.path
            listed.append({"name": entry["run"], **entry, "startup": path == startup.path,
                           "current": path == shown.path, "training": entry["run"] == f"playground/{training}"})
        if not startup_listed:                # started with a checkpoint outside the runs folder
            card = startup.card
            listed.insert(0, {"name": f"{card['checkpoint']} (start-up)", "run": None,
                              "tokenizer": card["tokenizer"]["kind"], "vocab_size": card["tokenizer"]["vocab_size"],
                              "parameters": card["parameters"], "step": card["step"],
                              "best_val_loss": card["best_val_loss"], "startup": True, "current": shown is startup,
                              "training": False})
        return {"models": listed}

    @app.post("/api/checkpoint", summary="Switch every view to a run's checkpoint (or back to the start-up one)")
    def switch(body: CheckpointRequest):
        nonlocal current
        if body.run is None:
            current = startup
            return current.card
        folder = models.find(body.run)
        path = (folder / f"{body.which}.pt").resolve()
        if path == startup.path:
            current = startup
        elif not path.is_file():
            raise UserError(f"run {body.run} has no {body.which}.pt yet")
        else:           # a run that trains: its checkpoint as saved now; the trainer replaces the file atomically
            current = Current(load_for_inference(path, startup.loaded.device.type), f"{folder.name}/{path.name}",
                              path)
        return current.card

    return app
