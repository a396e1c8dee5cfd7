"""Training from the page: one run at a time, in a child process running the project's own ``train.py``.

A child process keeps the server answering while the CPU trains, and a stop is the trainer's own Ctrl-C: it saves
the step and exits, so Resume (``train.py --resume``) continues exactly. Each run gets a folder of its own under the
server's run folder (``runs/playground/<id>``) for its checkpoints and ``metrics.jsonl``, with a pasted text and the
trainer's error output beside it (``runs/playground/texts/<id>.txt``, ``logs/<id>.txt``); nothing is written
anywhere else. While it trains, the server reads the metrics as they grow and asks the newest checkpoint the probe questions (``data.toy_facts.PROBES``):
the greedy answer and the probability of the expected one. The run's model at step 0 is asked too: the server
builds it as ``train.py`` does (the same config and seed give the same initial weights), so the story starts with
the nonsense a fresh model answers.
"""
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import MAX_SEED, load_config
from data.tokenization import WordTokenizer, show_token
from data.toy_facts import LINE_START, PROBES
from errors import UserError
from inference import Loaded, continuation_prob, greedy_text, load_for_inference, trace
from model.config import POSITIONALS
from playground.views import ORDER_PAIR, attention_rows
from training.loop import build
from training.run_dir import in_use, read_metrics
from training.toy import DEFAULT_TOY, TOY_CONFIGS, TOY_CORPUS

ROOT = Path(__file__).resolve().parent.parent
MAX_TEXT_BYTES = 200 * 1024
MIN_TEXT_CHARS = 1000
MAX_KEPT_RUNS = 10                         # the disk budget: runs kept (each up to ~57 MB at the largest settings)
ATTENTION_SENTENCE = ORDER_PAIR[0]         # watched at every checkpoint, so heads can be seen specialising
RUN_ID = re.compile(r"^\d{8}-\d{6}(-\d+)?$")


class Busy(UserError):
    """A second run asked for while one trains."""


@dataclass
class Knobs:
    """What the Train panel lets a learner choose, within ``KNOB_LIMITS``; everything not chosen here comes from
    the toy config of the tokenizer chosen (``make demo``'s), and the word toy config gives the panel's starting
    values (``default_knobs``)."""
    n_layer: int
    n_head: int
    n_embd: int
    max_iters: int
    lr: float
    positional: str
    tokenizer: str
    seed: int
    eval_interval: int = 50


# each number's range on the Train panel and in POST /api/train, (lowest, highest), both allowed except a learning
# rate of 0: models a 2-core CPU trains while the learner watches
KNOB_LIMITS = {"n_layer": (1, 6), "n_head": (1, 8), "n_embd": (8, 256), "max_iters": (10, 5000), "lr": (0.0, 0.05),
               "seed": (0, MAX_SEED)}
POSITIONAL = POSITIONALS                     # the panel's choice of positions, and "train the same with
                                             # positions X": every one the model has
TOKENIZERS = tuple(TOY_CONFIGS)              # the panel's choice: a token per word or per character ("word", "char"),
                                             # each on its toy config (its context, its schedule)


@functools.cache
def toy_config(tokenizer: str):
    return load_config(TOY_CONFIGS[tokenizer])


@functools.cache
def default_knobs() -> Knobs:
    """The default toy config's model and schedule (the word model's): where the Train panel starts."""
    cfg = toy_config(DEFAULT_TOY)
    return Knobs(cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd, cfg.train.max_iters, cfg.train.lr,
                 cfg.model.positional, cfg.data.tokenizer, cfg.train.seed)


def tokens_needed(tokenizer: str) -> int:
    """The fewest tokens a pasted text must make for this tokenizer's toy config: the held-out tenth must still
    hold one training window of block_size + 1 tokens (``data.corpus.split_tokens``)."""
    cfg = toy_config(tokenizer)
    n = int((cfg.model.block_size + 1) / cfg.data.val_fraction)
    while int(n * cfg.data.val_fraction) <= cfg.model.block_size:
        n += 1
    return n


def count_tokens(text: str, tokenizer: str) -> int:
    return len(WordTokenizer.split(text)) if tokenizer == "word" else len(text)


def overrides(knobs: Knobs, run_dir: Path, corpus: Path) -> list[str]:
    return [f"model.n_layer={knobs.n_layer}", f"model.n_head={knobs.n_head}", f"model.n_embd={knobs.n_embd}",
            f"model.positional={knobs.positional}", f"train.max_iters={knobs.max_iters}", f"train.lr={knobs.lr}",
            f"train.min_lr={min(1e-4, knobs.lr)}", f"train.warmup_iters={min(50, knobs.max_iters // 10)}",
            f"train.eval_interval={knobs.eval_interval}", "train.log_interval=10", "train.eval_iters=10",
            f"train.seed={knobs.seed}",
            "train.compile=false", f"train.out_dir={run_dir}", f"data.path={corpus}",
            f"data.cache_dir={run_dir / 'tokens'}"]


def probe(loaded: Loaded) -> list[dict]:
    """Each probe's greedy answer now, and the probability the model gives the expected answer (teacher-forced,
    ``inference.continuation_prob``: the numbers the training lesson prints)."""
    loaded.model.eval()
    answers = []
    for prompt, expected in PROBES:
        unknown = loaded.tokenizer.unknown(prompt + expected)
        try:
            if unknown:                         # a word model trained on other text: <unk> would answer nothing
                raise UserError(f"not in its vocabulary: {', '.join(map(repr, unknown))}")
            answer = greedy_text(loaded, LINE_START + prompt, min_chars=len(expected) + 1).split("\n")[0]
            p = continuation_prob(loaded.model, loaded.tokenizer, LINE_START + prompt, expected)
        except (UserError, ValueError) as e:    # a char model trained on other text cannot read the question
            answer, p = f"(cannot ask: {e})", None
        answers.append({"prompt": prompt, "expected": expected, "answer": answer, "p_expected": p,
                        "shown_expected": show_token(expected), "shown_answer": show_token(answer)})
    return answers


def step_zero(config: Path, settings: list[str]) -> Loaded:
    """The run's model before its first step, built in this process as ``train.py`` builds it from the same config
    file and settings (``training.loop.build`` seeds with ``train.seed`` right before making the model: the same
    initial weights), on the CPU, with the corpus's tokens cached in a folder of its own."""
    with tempfile.TemporaryDirectory() as cache:
        cfg = load_config(config, [*settings, f"data.cache_dir={cache}"])
        run = build(cfg, device=torch.device("cpu"), log=lambda *_: None)
    return Loaded(run.model.eval(), run.tokenizer, cfg, run.device)


class LiveTraining:
    """The one run the page trains (or none), and what it has written so far."""

    def __init__(self, runs_root: Path):
        self.root = Path(runs_root).resolve() / "playground"     # absolute once: the trainer runs in another folder
        self.lock = threading.Lock()
        self.probing = threading.Lock()                      # one probe per new checkpoint, however many ask
        self.proc: subprocess.Popen | None = None
        self.stopping: subprocess.Popen | None = None         # the trainer already asked to stop
        self.run_dir: Path | None = None
        self.errors: Path | None = None                      # the running trainer's error output
        self.probed: tuple[int, float] | None = None         # (step, file time) of the last probed checkpoint
        self.probes: list[dict] = []                         # the newest checkpoint's answers
        self.answers: list[dict] = []                        # every probed step's: {"step", "probes"}, step 0 first
        self.vocab_size: int | None = None                   # the run's vocabulary (random guessing: ln V nats)
        self.max_iters = 0                                   # the step the run trains to
        self.launched: float | None = None                   # when the trainer was started (time.monotonic)
        self.ended_at: float | None = None                   # ... and when it was seen ended
        self.pace: list[tuple[float, int]] = []              # (time, step) first and last seen: the time left
        self.attention: list[dict] = []                      # per probed checkpoint: ATTENTION_SENTENCE's weights
        self.outcome = ""                                    # how the last process ended, in words

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, knobs: Knobs, text: str | None) -> str:
        """A new run on the toy corpus (``text`` None) or on ``text``; returns its id."""
        if text is not None:
            if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
                raise UserError(f"text: at most {MAX_TEXT_BYTES // 1024} KiB of text can be trained on here; "
                                "train on a larger corpus with train.py --data")
            if len(text.strip()) < MIN_TEXT_CHARS:
                raise UserError(f"text: give at least {MIN_TEXT_CHARS:,} characters to train on")
            count, needed = count_tokens(text, knobs.tokenizer), tokens_needed(knobs.tokenizer)
            if count < needed:
                unit = "words, digits and marks" if knobs.tokenizer == "word" else "characters"
                raise UserError(f"text: it makes {count:,} {unit}; a {knobs.tokenizer} model needs at least "
                                f"{needed:,} (a tenth is held out for validation and must hold one context window): "
                                "paste more text" + (", or choose characters" if knobs.tokenizer == "word" else ""))
        if knobs.n_embd % knobs.n_head or knobs.n_embd % 2:
            raise UserError(f"n_embd ({knobs.n_embd}) must be even and divisible by n_head ({knobs.n_head})")
        return self.begin(text, TOY_CONFIGS[knobs.tokenizer], lambda run_dir, corpus: overrides(knobs, run_dir, corpus),
                          knobs.max_iters)

    def variant(self, run_id: str, positional: str) -> str:
        """A new run with the settings of page run ``run_id`` (its config.yaml: model, schedule, seed, corpus) but
        positions ``positional``, so that the two loss curves can be compared (the Runs panel); returns its id."""
        source = self.find(run_id)
        config = source / "config.yaml"
        try:
            cfg = load_config(config, [f"model.positional={positional}"])     # the variant's shape is checked now
            text = None if Path(cfg.data.path).resolve() == TOY_CORPUS.resolve() else \
                Path(cfg.data.path).read_text(encoding="utf-8")                 # its own copy, as a pasted text
        except OSError as e:
            raise UserError(f"run {run_id}: cannot read its {'config' if not config.is_file() else 'text'} "
                            f"({e.strerror or e})") from None
        return self.begin(text, config, lambda run_dir, corpus: [
            f"model.positional={positional}", f"train.out_dir={run_dir}", f"data.path={corpus}",
            f"data.cache_dir={run_dir / 'tokens'}"], cfg.train.max_iters, spare=run_id)

    def begin(self, text: str | None, config: Path, settings_for, max_iters: int, spare: str | None = None) -> str:
        """A new run folder, with the pasted ``text`` beside it (None: the toy corpus), and train.py started with
        ``config`` and the overrides ``settings_for(run_dir, corpus)``; runs beyond the disk budget go first, except
        ``spare``."""
        with self.lock:
            self.refuse_if_running()
            self.tidy(keep=MAX_KEPT_RUNS - 1, spare=spare)
            run_id = time.strftime("%Y%m%d-%H%M%S")
            run_dir, n = self.root / run_id, 1
            while run_dir.exists():
                n += 1
                run_dir = self.root / f"{run_id}-{n}"
            corpus = TOY_CORPUS
            try:
                run_dir.mkdir(parents=True)
                if text is not None:               # beside the run folder, which holds only what train.py writes
                    corpus = self.root / "texts" / f"{run_dir.name}.txt"
                    corpus.parent.mkdir(exist_ok=True)
                    corpus.write_text(text, encoding="utf-8")
            except OSError as e:                   # a full disk, a folder made read-only since start-up
                self.remove(run_dir.name)
                raise UserError(f"cannot write the new run's folder in {self.root}: {e.strerror or e}") from None
            self.attention, self.answers, self.vocab_size = [], [], None
            settings = settings_for(run_dir, corpus)
            self.launch(run_dir, ["--config", str(config), "--set", *settings])
            self.max_iters = max_iters
            threading.Thread(target=self.probe_step_zero, args=(config, settings), daemon=True).start()
            return run_dir.name

    def resume(self, run_id: str) -> None:
        with self.lock:
            self.refuse_if_running()
            run_dir = self.find(run_id)
            if not (run_dir / "last.pt").is_file():
                raise UserError(f"run {run_id} has no checkpoint to resume yet")
            if run_dir != self.run_dir:
                self.attention, self.answers = [], []
            self.launch(run_dir, ["--resume", str(run_dir)])
            self.max_iters = load_config(run_dir / "config.yaml").train.max_iters

    def stop(self) -> bool:
        """Ask the trainer to stop as Ctrl-C would (it saves the step first); False when nothing runs."""
        with self.lock:
            if not self.running():
                return False
            if self.stopping is not self.proc:        # once: a second Ctrl-C would stop it without saving
                self.proc.send_signal(signal.SIGINT)
                self.stopping = self.proc
            return True

    def stop_and_wait(self, timeout: float = 60) -> None:
        """Stop the run (it saves its step) and wait for it: what the server does when it shuts down."""
        if self.stop():
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def refuse_if_running(self):
        if self.running():
            raise Busy(f"run {self.run_dir.name} is still training: stop it first (one run at a time)")
        orphan = self.orphan()
        if orphan:
            raise Busy(f"run {orphan} is still training in a process this server did not start (left by an earlier "
                       "server: it stops by itself within seconds, saving its step); try again when it has stopped")

    def training(self) -> str | None:
        """The page run training now, started by this server or by an earlier one, or None."""
        run_dir = self.run_dir
        return run_dir.name if self.running() and run_dir is not None else self.orphan()

    def orphan(self) -> str | None:
        """A page run that a trainer this server did not start holds (its lock), or None."""
        return next((run for run in self.runs() if (self.root / run) != self.run_dir and in_use(self.root / run)),
                    None)

    def tidy(self, keep: int, spare: str | None = None) -> None:
        """The disk budget: runs that ended before their first checkpoint go, then the oldest stopped runs until
        ``keep`` are left. A run that trains (here or in another process) is never removed, nor ``spare``."""
        stopped = [run for run in self.runs() if not in_use(self.root / run)
                   and not (self.running() and self.root / run == self.run_dir)]
        for run in stopped:
            if not (self.root / run / "last.pt").is_file() and run != spare:
                self.remove(run)
        kept = sorted((run for run in stopped if (self.root / run).is_dir()), key=lambda run: run != spare)
        for run in kept[keep:] if keep < len(kept) else []:         # runs() lists the newest first
            self.remove(run)

    def remove(self, run_id: str) -> None:
        """A page run's folder, with its pasted text and its trainer's log."""
        shutil.rmtree(self.root / run_id, ignore_errors=True)
        for extra in (self.root / "texts" / f"{run_id}.txt", self.root / "logs" / f"{run_id}.txt"):
            extra.unlink(missing_ok=True)

    def budget(self) -> str:
        return (f"The page keeps its {MAX_KEPT_RUNS} newest runs (now {len(self.runs())}); starting "
                "a new one removes the oldest stopped runs beyond that, and a run that fails before its first "
                "checkpoint is removed when it ends.")

    def launch(self, run_dir: Path, args: list[str]) -> None:
        """Start train.py; its error output goes to a file beside the run folder (a pipe nobody reads while the
        run lasts could fill up and stall the trainer)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.errors = self.root / "logs" / f"{run_dir.name}.txt"
        try:
            self.errors.parent.mkdir(exist_ok=True)
            errors = open(self.errors, "w", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write the trainer's log {self.errors}: {e.strerror or e}") from None
        with errors:       # --stop-with: the trainer stops (saving) when this server ends, however it ends
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--no-progress", "--stop-with",
                                          str(os.getpid()), *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                         stderr=errors)
        self.run_dir, self.probed, self.probes, self.outcome = run_dir, None, [], ""
        self.launched, self.ended_at, self.pace = time.monotonic(), None, []

    def find(self, run_id: str) -> Path:
        """A run folder this server made, by its id (never a path from a request)."""
        if not RUN_ID.match(run_id) or not (self.root / run_id).is_dir():
            raise UserError(f"no playground run {run_id!r}")
        return self.root / run_id

    def runs(self) -> list[str]:
        return sorted((p.name for p in self.root.glob("*") if RUN_ID.match(p.name)), reverse=True)

    def status(self, device: str) -> dict:
        """The run's state, its metrics so far and the probes of its newest checkpoint (asked again when a newer
        checkpoint is on disk)."""
        with self.lock:
            run_dir, proc = self.run_dir, self.proc
            if run_dir is None:
                return {"state": "idle", "runs": self.runs(), "disk": self.budget(), "orphan": self.orphan()}
            state = "training" if proc.poll() is None else self.ended(proc)
        metrics = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
        self.probe_newest(run_dir / "last.pt", device)
        losses = [{"iter": m["iter"], "loss": m["loss"]} for m in metrics if "loss" in m]
        return {"state": state, "run": run_dir.name, "outcome": self.outcome, "runs": self.runs(),
                "disk": self.budget(), "losses": losses,
                "evals": [{"iter": m["iter"], "train": m["train_loss"], "val": m["val_loss"]}
                          for m in metrics if "val_loss" in m],
                "probes": self.probes, "answers": self.answers, "vocab_size": self.vocab_size,
                "checkpoint": (run_dir / "best.pt").is_file(), "attention_steps": [a["step"] for a in self.attention],
                "max_iters": self.max_iters, **self.timing(state, losses[-1]["iter"] if losses else None)}

    def timing(self, state: str, step: int | None) -> dict:
        """Whole seconds since the trainer started (until it ended), and the time left at the pace seen so far:
        (steps left) × (seconds per step between the first and the last step seen logged), None before two."""
        now = time.monotonic()
        if state != "training" and self.ended_at is None:
            self.ended_at = now
        elapsed = (self.ended_at or now) - self.launched
        if step is not None and (not self.pace or self.pace[-1][1] != step):
            self.pace = [self.pace[0] if self.pace else (now, step), (now, step)]
        left = None
        if state == "training" and len(self.pace) == 2 and self.pace[1][1] > self.pace[0][1]:
            (t0, s0), (t1, s1) = self.pace
            left = round((self.max_iters - s1) * (t1 - t0) / (s1 - s0))
        return {"elapsed_s": round(elapsed), "left_s": left}

    def probe_newest(self, last: Path, device: str) -> None:
        """Ask the probes (and trace the attention sentence) once for each new last.pt."""
        with self.probing:
            if not last.is_file():
                return
            stamp = last.stat().st_mtime
            if self.probed is not None and self.probed[1] == stamp:
                return
            try:
                loaded = load_for_inference(last, device)
            except UserError:          # replaced while being read: the next status call reads it
                return
            self.probes = [{**p, "step": loaded.step} for p in probe(loaded)]
            self.probed = (loaded.step, stamp)
            self.remember(loaded, self.probes)

    def probe_step_zero(self, config: Path, settings: list[str]) -> None:
        """Ask the probes of the new run's untrained model (``step_zero``), in a thread of its own: the answers a
        learner compares the trained model's with. A run whose corpus cannot be read fails in the trainer too,
        which says why."""
        run_dir = self.run_dir
        try:
            loaded = step_zero(config, settings)
        except (UserError, OSError):
            return
        answers = [{**p, "step": 0} for p in probe(loaded)]
        with self.probing:
            if self.run_dir == run_dir:
                self.remember(loaded, answers)

    def remember(self, loaded: Loaded, answers: list[dict]) -> None:
        """One checkpoint's probe answers and attention, kept in step order (step 0's may come after a checkpoint)."""
        self.vocab_size = loaded.tokenizer.vocab_size
        if all(a["step"] != loaded.step for a in self.answers):
            self.answers = sorted([*self.answers, {"step": loaded.step, "probes": answers}], key=lambda a: a["step"])
        self.watch_attention(loaded)

    def watch_attention(self, loaded: Loaded) -> None:
        """Keep this checkpoint's attention weights for ``ATTENTION_SENTENCE`` (unless its tokenizer cannot read
        it), in memory, for the page's step slider."""
        try:
            t = trace(loaded, LINE_START + ATTENTION_SENTENCE)
        except UserError:
            return
        if all(a["step"] != loaded.step for a in self.attention):
            self.attention = sorted([*self.attention, {"step": loaded.step, "tokens": t.tokens,
                                                        "attention": attention_rows(t)}], key=lambda a: a["step"])

    def attention_history(self) -> dict:
        return {"sentence": ATTENTION_SENTENCE, "snapshots": self.attention}

    def ended(self, proc: subprocess.Popen) -> str:
        """finished, stopped (Ctrl-C: resumable) or failed, with the trainer's own one-line reason."""
        if not self.outcome:
            err = self.errors.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            reason = next((line for line in reversed(err) if line.startswith("error: ")), err[-1] if err else "")
            resumable = (self.run_dir / "last.pt").is_file()
            self.outcome = {0: "finished", 130: "stopped: resume continues it exactly"}.get(
                proc.returncode, f"failed ({reason or f'exit code {proc.returncode}'})"
                                 + ("; its last checkpoint is kept, and Resume continues from it" if resumable else ""))
            if not resumable:                  # ended before its first checkpoint: nothing in it to keep
                self.remove(self.run_dir.name)
                self.outcome = (self.outcome.split(":")[0] if proc.returncode == 130 else self.outcome) + (
                    "; it ended before its first checkpoint, so its folder was removed")
        return {0: "finished", 130: "stopped"}.get(proc.returncode, "failed")
