"""One optimizer step, and the loop that repeats it, read top to bottom: ``build`` sets a run up once,
``train_step`` takes one step (``update`` is its maths), ``fit`` repeats it between evaluations and checkpoints;
what ``fit`` calls by name (stop requests, the loss window, evaluate-and-save) follows it.

    x, y = random windows of the corpus (y is x shifted by one token)
    loss = cross_entropy(model(x), y)         how surprised the model is by the true next tokens
    loss.backward()                           gradients of the loss for every weight
    optimizer.step()                          move every weight a little against its gradient

The loss stays on the device until the loop logs it: reading a number off a GPU (``loss.item()``) makes the CPU
wait until the GPU has finished, and the GPU then idles while the CPU prepares the next step. Making the step
faster (torch.compile, CUDA graphs) is set up in ``training.speed``, beside this module.
"""
import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from core.atomic_files import atomic_copy
from core.checkpoint import checkpoint_state, save_checkpoint
from core.config import Config
from core.device import autocast, resolve_device, resolve_dtype, set_threads
from core.fault_injection import kill_point
from core.memory import check_fits, training_bytes
from data.corpus import Splits, get_batch, load_corpus
from data.tokenization import Tokenizer
from errors import UserError
from model.gpt import GPT
from training.distributed import Distributed, any_process, sum_and_any
from training.evaluation import EvaluationStopped, evaluate, sample_near_target, whole_split_loss
from training.run_dir import MetricsLog
from training.schedule import lr_at
from training.speed import compile_if_it_works, graphed_step
from training.step_graph import GraphedStep


@dataclass
class Run:
    """Everything a training step needs, set up once by ``build``."""
    cfg: Config
    model: GPT                          # the weights that are trained and saved
    forward: torch.nn.Module            # what a step calls: the model, compiled and/or wrapped by DDP
    optimizer: torch.optim.Optimizer
    tokenizer: Tokenizer
    splits: Splits                      # train and val token ids, on the device
    generator: torch.Generator          # draws the batches (on the CPU; saved in checkpoints for exact resume)
    device: torch.device
    dtype: torch.dtype                  # the autocast precision of the matmuls
    ddp: Distributed = field(default_factory=Distributed)
    compiled: bool = False              # whether ``forward`` runs the model through torch.compile
    graphed: GraphedStep | None = None  # the update recorded as a CUDA graph (``train.cuda_graphs``, eager model)
    grad_norm: torch.Tensor | None = None  # the last update's gradient norm ‖g‖ before clipping (0-dim, on the
                                        # device): ``update`` writes it in place, so a recorded step's replay does too

    @property
    def tokens_per_step(self) -> int:
        train = self.cfg.train
        return train.batch_size * train.grad_accum * self.cfg.model.block_size * self.ddp.world_size


def build(cfg: Config, *, tokenizer: Tokenizer | None = None, weights: dict | None = None,
          device: torch.device | None = None, ddp: Distributed | None = None, log=print) -> Run:
    """The corpus as token ids, a model (initialised from ``cfg.train.seed``, or ``weights``), its optimizer and the
    batch generator, on ``device`` (``cfg.train.device`` when None); one process unless ``ddp`` says otherwise."""
    train, ddp = cfg.train, ddp or Distributed()
    device = device or resolve_device(train.device)[0]
    dtype, dtype_why = resolve_dtype(train.dtype, device)
    set_threads(train.threads)
    log(f"precision: {dtype_why}; {torch.get_num_threads()} CPU threads")
    tokenizer, splits = load_corpus(cfg.data, cfg.model.block_size, tokenizer, log)
    params = GPT.params_for(cfg.model, tokenizer.vocab_size)
    check_fits(training_bytes(cfg.model, tokenizer.vocab_size, train.batch_size) + splits.nbytes_on(device),
               f"training this model ({params:,} parameters, batch {train.batch_size})", device)
    torch.manual_seed(train.seed)                                   # the initial weights, then the dropout masks
    model = GPT(cfg.model, tokenizer.vocab_size)
    if weights is not None:
        model.load_state_dict(weights)
    model.to(device)
    optimizer = model.configure_optimizer(train.lr, train.weight_decay, (train.beta1, train.beta2),
                                          fused=train.fused_optimizer and device.type in ("cpu", "cuda"))
    run = Run(cfg, model, model, optimizer, tokenizer, splits.to(device), torch.Generator().manual_seed(train.seed),
              device, dtype, ddp, grad_norm=torch.zeros((), device=device))
    model.train()
    if train.compile:                   # speed: training.speed, beside this module
        run.forward, run.compiled = compile_if_it_works(run, log)
    if ddp.enabled:
        run.forward = DistributedDataParallel(run.forward, device_ids=[device.index] if device.type == "cuda" else None)
    if train.cuda_graphs and not run.compiled:
        run.graphed = graphed_step(run, update, log)
    log(f"model: {model.num_params():,} parameters, {cfg.model.n_layer} layers × {cfg.model.n_head} heads × "
        f"{cfg.model.n_embd} dims, context {cfg.model.block_size}")
    return run


def train_step(run: Run, lr: float) -> torch.Tensor:
    """One optimizer step over ``grad_accum`` micro-batches at learning rate ``lr``. Returns the mean loss as a
    tensor on the device (0-dim), without waiting for it."""
    train = run.cfg.train
    batches = [get_batch(run.splits.train, train.batch_size, run.cfg.model.block_size, run.generator,
                         run.ddp.rank, run.ddp.world_size) for _ in range(train.grad_accum)]     # (B, T) each
    if run.graphed is not None:                         # the same update, recorded once and replayed (speed)
        return run.graphed(batches, lr)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    loss = update(run, batches)
    run.optimizer.zero_grad(set_to_none=True)
    return loss


def update(run: Run, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Gradients of the mean loss over the micro-batches, clipped, then one AdamW update; the mean loss. Their norm
    before clipping goes to ``run.grad_norm`` (the trainer logs it: a spike there comes before a loss spike)."""
    total = torch.zeros((), device=run.device)
    for micro, (x, y) in enumerate(batches):
        with gradients_synced(run, micro == len(batches) - 1):
            with autocast(run.device, run.dtype):
                _, loss = run.forward(x, y)                                             # mean cross-entropy
            (loss / len(batches)).backward()                                            # grads += ∂loss/∂w
        total += loss.detach()
    if run.cfg.train.grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.train.grad_clip)  # ‖g‖ ≤ grad_clip
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in run.model.parameters() if p.grad is not None])
    run.grad_norm.copy_(norm)                                                           # ‖g‖ = √(Σ g²)
    run.optimizer.step()                                                                # AdamW update
    return total / len(batches)


def gradients_synced(run: Run, last_micro_batch: bool):
    """DDP averages the gradients across processes on backward; that is needed once per step, after the last
    micro-batch, so the others skip it."""
    if not run.ddp.enabled or last_micro_batch:
        return contextlib.nullcontext()
    return run.forward.no_sync()


@dataclass
class RunResult:
    run_dir: Path
    iter: int
    best_val: float
    interrupted: bool = False
    evals: list[dict] = field(default_factory=list)
    target_reached: bool = False        # the whole val split reached train.target_val_loss
    val_whole: float | None = None      # the last whole-val-split loss measured (only with a target)


def fit(run: Run, run_dir: Path, metrics: MetricsLog | None, start: int = 0, best_val: float = math.inf,
        eval_pending: bool = False, progress: bool = True, log=print) -> RunResult:
    """Train from step ``start`` to ``train.max_iters``, evaluating and saving every ``eval_interval`` steps.
    Rank 0 alone (``metrics`` is None on the others) evaluates, logs and writes."""
    train, main = run.cfg.train, run.ddp.is_main
    result = RunResult(run_dir, start, best_val)
    bar = tqdm(total=train.max_iters, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    report = bar.write if progress else log         # a line for the user: above the progress bar, or to the log
    window = LossWindow(run.device)
    with StopRequest() as stop, bar:
        if main and eval_pending and not evaluate_and_save(run, result, metrics, stop, report):
            result.interrupted = True               # stopped during the evaluation again, before any step
            return result
        for step in range(start, train.max_iters):
            done = step + 1
            log_now = done % train.log_interval == 0 or done == train.max_iters
            eval_now = done % train.eval_interval == 0 or done == train.max_iters
            # step, at the scheduled learning rate (warm-up, then cosine decay)
            lr = lr_at(step, train)
            window.add(train_step(run, lr), run.grad_norm)
            # log: the only place the losses are read back (and, under DDP, a stop request agreed on)
            stop_now = stop.requested and not run.ddp.enabled
            if log_now or eval_now or stop_now:
                loss, grad_norm, stop_now = window.read(run.ddp, stop.requested)
                if not math.isfinite(loss):
                    raise diverged("loss", loss, window.steps_read(done), run_dir)
                if log_now:
                    tokens_per_s = window.steps_per_s() * run.tokens_per_step
                    if main:
                        metrics.write({"iter": done, "loss": loss, "lr": lr, "tokens_per_s": round(tokens_per_s, 1),
                                       "grad_norm": grad_norm})
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}")
                    window.restart()
            bar.update(1)
            kill_point("step")
            result.iter = done
            # evaluate and checkpoint
            if main and eval_now:
                if not evaluate_and_save(run, result, metrics, stop, report):
                    result.interrupted = True
                    break
                window.restart_clock()                                      # tokens/s leaves evaluation out
            # stop: at the target loss, or when asked to (saving the step first)
            if (train.target_val_loss is not None and done % train.eval_interval == 0
                    and any_process(run.ddp, result.target_reached)):      # only rank 0 evaluates
                if main:
                    report(f"whole val split at {result.val_whole:.4f} ≤ train.target_val_loss "
                           f"{train.target_val_loss}: stopping at step {done}")
                break
            if stop_now:
                if main:
                    save(run, run_dir, done, result.best_val, is_best=False)
                    report(f"interrupted: saved step {done} to {run_dir / 'last.pt'}; continue with --resume {run_dir}")
                result.interrupted = True
                break
    return result


class StopRequest:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a flag checked between steps and between evaluation batches, so a
    stop never lands mid-update and never waits for a long evaluation. A second request stops at once."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():   # signals can only be caught there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:          # asked twice: stop at once (checkpoints are replaced atomically, never half)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class LossWindow:
    """The training losses and gradient norms since the last log line, summed on the device and read back only when
    logged; and the training steps per second since then, evaluation left out."""

    def __init__(self, device: torch.device):
        self.total, self.steps = torch.zeros(2, device=device), 0          # (Σ loss, Σ ‖g‖)
        self.restart_clock()

    def add(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.total[0] += loss
        self.total[1] += grad_norm
        self.steps += 1
        self.timed_steps += 1

    def read(self, ddp: Distributed, stop: bool) -> tuple[float, float, bool]:
        """The window's mean loss and mean gradient norm (over processes too), and whether any process was asked to
        stop."""
        (loss, grad_norm), stop = sum_and_any(ddp, self.total, stop)
        n = self.steps * ddp.world_size
        return loss / n, grad_norm / n, stop

    def steps_read(self, done: int) -> str:
        return f"step {done}" if self.steps == 1 else f"one of steps {done - self.steps + 1}–{done}"

    def steps_per_s(self) -> float:
        return self.timed_steps / (time.perf_counter() - self.started)

    def restart(self) -> None:
        self.total.zero_()
        self.steps = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        self.timed_steps, self.started = 0, time.perf_counter()


def evaluate_and_save(run: Run, result: RunResult, metrics: MetricsLog, stop: StopRequest, report) -> bool:
    """Evaluate, log, save (best.pt too when val improved) and, with a target loss, check the whole val split
    when the sample comes near it. False when a stop request came during it: then last.pt is saved with the
    evaluation marked pending, and a resume starts by redoing it."""
    train, done, run_dir = run.cfg.train, result.iter, result.run_dir
    try:
        with torch.compiler.set_stance("force_eager"):   # compiled blocks: no recompiling for eval mode's shapes
            losses = evaluate(run.model, run.splits, run.cfg, run.device, run.dtype, stop=lambda: stop.requested)
    except EvaluationStopped:
        save(run, run_dir, done, result.best_val, is_best=False, eval_pending=True)
        report(f"interrupted during the evaluation of step {done}: saved step {done} to {run_dir / 'last.pt'} "
            f"(the evaluation is redone first); continue with --resume {run_dir}")
        return False
    for name in ("train", "val"):
        if not math.isfinite(losses[name]):     # e.g. weights broken by this step's update: never save them
            raise diverged(f"{name} loss", losses[name], f"step {done}", run_dir)
    is_best = losses["val"] < result.best_val
    result.best_val = min(result.best_val, losses["val"])
    metrics.write({"iter": done, "train_loss": losses["train"], "val_loss": losses["val"]})
    result.evals.append({"iter": done, "train": losses["train"], "val": losses["val"]})
    report(f"step {done}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
           + (" (best)" if is_best else ""))
    save(run, run_dir, done, result.best_val, is_best)
    if train.target_val_loss is not None and sample_near_target(losses, train.target_val_loss):
        try:
            with torch.compiler.set_stance("force_eager"):
                result.val_whole = whole_split_loss(run.model, run.splits.val, run.cfg.model.block_size,
                                                    train.batch_size, run.device, run.dtype,
                                                    stop=lambda: stop.requested)
        except EvaluationStopped:
            report(f"interrupted during the whole-val-split check of step {done}: saved step {done} to "
                f"{run_dir / 'last.pt'}; continue with --resume {run_dir}")
            return False
        metrics.write({"iter": done, "val_loss_whole": result.val_whole})
        report(f"step {done}: val loss on the whole val split {result.val_whole:.4f}")
        result.target_reached = result.val_whole <= train.target_val_loss
    return True


def save(run: Run, run_dir: Path, step: int, best_val: float, is_best: bool, eval_pending: bool = False) -> None:
    """best.pt first: a kill between the two writes then leaves last.pt one evaluation behind, and the resumed run
    redoes that evaluation and writes the same best.pt again. The other order would leave a last.pt whose best_val
    claims a best.pt that was never written."""
    if not all(torch.isfinite(p).all() for p in run.model.parameters()):   # e.g. Ctrl-C right after a bad update
        raise diverged("a weight", math.nan, f"step {step}", run_dir)
    state = checkpoint_state(run.model, run.optimizer, run.cfg, run.tokenizer, step, best_val, run.generator,
                             eval_pending)
    if is_best:
        save_checkpoint(run_dir / "best.pt", state)
        atomic_copy(run_dir / "best.pt", run_dir / "last.pt")
    else:
        save_checkpoint(run_dir / "last.pt", state)


def diverged(what: str, value: float, when: str, run_dir: Path) -> UserError:
    return UserError(f"{what} became {value} at {when} (try a lower train.lr or train.grad_clip); "
                     f"stopped without saving; the last good checkpoints in {run_dir} are untouched")
