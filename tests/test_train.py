import contextlib
import functools
import json

import pytest
import torch

from core.checkpoint import load_checkpoint
from errors import UserError
from tests.conftest import DEVICES, STEPS
from training import loop
from training.loop import train_step
from training.run_dir import RunLock, read_metrics
from training.trainer import train

QUIET = {"progress": False, "log": lambda *_: None}


def losses(run_dir):
    return [(m["iter"], m["loss"]) for m in read_metrics(run_dir / "metrics.jsonl") if "loss" in m]


def test_a_run_writes_checkpoints_metrics_and_its_config(tiny_cfg):
    cfg = tiny_cfg()
    result = train(cfg, **QUIET)
    run = result.run_dir
    assert result.iter == 12 and [e["iter"] for e in result.evals] == [4, 8, 12]
    assert {"last.pt", "best.pt", "metrics.jsonl", "config.yaml", "command.txt"} <= {p.name for p in run.iterdir()}
    assert load_checkpoint(run / "last.pt")["iter"] == 12
    assert [i for i, _ in losses(run)] == list(range(1, 13))
    assert losses(run)[-1][1] < losses(run)[0][1]
    with pytest.raises(UserError, match="already holds a checkpoint"):
        train(cfg, **QUIET)                                        # never silently overwrites a run
    train(cfg, overwrite=True, **QUIET)


def test_same_seed_same_losses(tiny_cfg, tmp_path):
    a = train(tiny_cfg(**{"model.dropout": 0.1}), **QUIET).run_dir
    b = train(tiny_cfg(**{"model.dropout": 0.1, "train.out_dir": tmp_path / "b"}), **QUIET).run_dir
    assert losses(a) == losses(b)


class StopAfter(loop.StopRequest):
    """Behaves like Ctrl-C arriving during step ``n``: the n-th training step raises the flag."""

    n = 0

    def __enter__(self):
        real_step, steps = loop.train_step, []

        def step_then_maybe_stop(*args, **kwargs):
            out = real_step(*args, **kwargs)
            steps.append(1)
            self.requested = self.requested or len(steps) >= self.n
            return out

        self.monkeypatch.setattr(loop, "train_step", step_then_maybe_stop)
        return super().__enter__()


@pytest.mark.parametrize("step", STEPS, ids=lambda s: " ".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("stop_at", [3, 4, 6])
def test_resume_is_exact(tiny_cfg, tmp_path, monkeypatch, stop_at, step):
    """Interrupted at step stop_at and resumed = the uninterrupted run, loss for loss, bit for bit (with dropout).
    With CUDA graphs the resumed run takes its first step eagerly where the other replayed its recording."""
    extra = {"model.dropout": 0.1, "train.grad_accum": 2, **step}
    full = train(tiny_cfg(**extra, **{"train.out_dir": tmp_path / "full"}), **QUIET).run_dir
    monkeypatch.setattr(loop, "StopRequest", StopAfter)
    StopAfter.n, StopAfter.monkeypatch = stop_at, monkeypatch
    stopped = train(tiny_cfg(**extra), **QUIET)
    assert stopped.interrupted and stopped.iter == stop_at
    monkeypatch.undo()
    resumed = train(resume=stopped.run_dir, **QUIET)
    assert resumed.iter == 12 and not resumed.interrupted
    assert losses(resumed.run_dir) == losses(full)
    evals = [m for m in read_metrics(full / "metrics.jsonl") if "val_loss" in m]
    assert [m for m in read_metrics(resumed.run_dir / "metrics.jsonl") if "val_loss" in m] == evals


@pytest.mark.parametrize("positional", ["learned", "rope"])
def test_runs_with_learned_or_rotary_positions_resume_exactly(tiny_cfg, tmp_path, monkeypatch, positional):
    """A learned table is a parameter with its own optimizer state; RoPE's tables are buffers rebuilt on load:
    both runs, stopped at step 5 and resumed, are the uninterrupted run bit for bit."""
    extra = {"model.positional": positional, "model.dropout": 0.1}
    full = train(tiny_cfg(**extra, **{"train.out_dir": tmp_path / "full"}), **QUIET).run_dir
    monkeypatch.setattr(loop, "StopRequest", StopAfter)
    StopAfter.n, StopAfter.monkeypatch = 5, monkeypatch
    stopped = train(tiny_cfg(**extra), **QUIET)
    assert stopped.interrupted and stopped.iter == 5
    monkeypatch.undo()
    resumed = train(resume=stopped.run_dir, **QUIET)
    assert losses(resumed.run_dir) == losses(full) and len(losses(full)) == 12
    assert load_checkpoint(full / "last.pt")["config"]["model"]["positional"] == positional


def test_a_stop_during_an_evaluation_is_resumed_exactly(tiny_cfg, tmp_path, monkeypatch):
    """Ctrl-C during the evaluation of step 4: it is abandoned at once, last.pt holds step 4 with the evaluation
    pending, and the resumed run does that evaluation first: the same losses, evaluations and best.pt."""
    full = train(tiny_cfg(**{"train.out_dir": tmp_path / "full"}), **QUIET).run_dir
    real_evaluate = loop.evaluate

    class Recorded(loop.StopRequest):
        def __enter__(self):
            Recorded.current = self
            return super().__enter__()

    def stopped_during(model, splits, cfg, device, dtype, stop):
        Recorded.current.requested = True                      # the signal arrives as the evaluation begins
        return real_evaluate(model, splits, cfg, device, dtype, stop)

    monkeypatch.setattr(loop, "StopRequest", Recorded)
    monkeypatch.setattr(loop, "evaluate", stopped_during)
    stopped = train(tiny_cfg(), **QUIET)
    assert stopped.interrupted and stopped.evals == []
    assert load_checkpoint(stopped.run_dir / "last.pt")["iter"] == 4 and not (stopped.run_dir / "best.pt").exists()
    monkeypatch.undo()
    resumed = train(resume=stopped.run_dir, **QUIET)
    assert resumed.iter == 12 and [e["iter"] for e in resumed.evals] == [4, 8, 12]
    assert losses(resumed.run_dir) == losses(full)
    evals = [m for m in read_metrics(full / "metrics.jsonl") if "val_loss" in m]
    assert [m for m in read_metrics(resumed.run_dir / "metrics.jsonl") if "val_loss" in m] == evals
    assert torch.equal(load_checkpoint(resumed.run_dir / "best.pt")["model"]["lm_head.weight"],
                       load_checkpoint(full / "best.pt")["model"]["lm_head.weight"])


def test_resume_can_extend_training_but_not_change_the_model(tiny_cfg):
    run = train(tiny_cfg(), **QUIET).run_dir
    assert train(resume=run, overrides=["train.max_iters=14"], **QUIET).iter == 14
    with pytest.raises(UserError, match="model.* cannot change"):
        train(resume=run, overrides=["model.n_layer=3"], **QUIET)


def test_fine_tune_from_a_checkpoint_on_a_new_corpus(tiny_cfg, tmp_path):
    run = train(tiny_cfg(), **QUIET).run_dir
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text("the cat chased the dog. Who chased? the cat.\n" * 20)
    tuned = train(tiny_cfg(**{"data.path": new_corpus, "train.out_dir": tmp_path / "tuned", "model.n_layer": 3}),
                  init_from=run / "best.pt", **QUIET)
    ckpt = load_checkpoint(tuned.run_dir / "last.pt")
    assert ckpt["tokenizer"] == load_checkpoint(run / "best.pt")["tokenizer"]
    assert ckpt["config"]["model"]["n_layer"] == 2                   # the checkpoint's shape wins
    bad = tmp_path / "bad.txt"
    bad.write_text("Zebras only! " * 40)
    with pytest.raises(UserError, match="not in this model's vocabulary"):
        train(tiny_cfg(**{"data.path": bad, "train.out_dir": tmp_path / "t2"}), init_from=run / "best.pt", **QUIET)


def test_a_second_trainer_on_the_same_run_directory_is_refused(tiny_cfg):
    cfg = tiny_cfg()
    run = tmp = cfg.train.out_dir
    from pathlib import Path
    Path(run).mkdir(parents=True)
    with RunLock(Path(tmp)):
        with pytest.raises(UserError, match="in use by another training process"):
            train(cfg, **QUIET)


def test_metrics_lines_are_json(tiny_cfg):
    run = train(tiny_cfg(), **QUIET).run_dir
    for line in (run / "metrics.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line)["iter"], int)


def test_auto_precision_is_bf16_only_where_it_was_measured_to_pay(monkeypatch):
    import torch

    from core import device

    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_amx", lambda: True)
    assert device.resolve_dtype("auto", cpu)[0] == torch.bfloat16
    assert device.resolve_dtype("float32", cpu)[0] == torch.float32          # an explicit choice wins
    monkeypatch.setattr(device, "cpu_has_amx", lambda: False)
    assert device.resolve_dtype("auto", cpu)[0] == torch.float32
    assert device.resolve_dtype("bfloat16", cpu)[0] == torch.bfloat16


def test_bf16_autocast_training_follows_the_fp32_curve_and_is_deterministic(tiny_cfg, tmp_path):
    """The bf16 path (autocast, attention cast up to fp32 on the CPU) learns like fp32, and the same seed gives
    the same losses, as exact resume needs."""
    extra = {"train.max_iters": 24, "train.eval_interval": 8}
    fp32 = train(tiny_cfg(**extra, **{"train.out_dir": tmp_path / "fp32"}), **QUIET).run_dir
    a = train(tiny_cfg(**extra, **{"train.dtype": "bfloat16"}), **QUIET).run_dir
    b = train(tiny_cfg(**extra, **{"train.dtype": "bfloat16", "train.out_dir": tmp_path / "b"}), **QUIET).run_dir
    assert losses(a)[-1][1] < losses(a)[0][1]
    assert max(abs(x - y) for (_, x), (_, y) in zip(losses(a), losses(fp32))) < 0.05
    assert losses(a) == losses(b)


class Wrapped(torch.nn.Module):
    """Stands in for torch.compile's module: the same model, called through another object."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_the_compile_check_draws_no_random_numbers_and_leaves_no_gradients(tiny_cfg, tmp_path, monkeypatch):
    """build tries the compiled model once (forward and backward with dropout): the run that follows is the same,
    loss for loss, as one never compiled."""
    extra = {"model.dropout": 0.1}
    plain = train(tiny_cfg(**extra, **{"train.out_dir": tmp_path / "plain"}), **QUIET).run_dir
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: Wrapped(model))
    lines = []
    tried = train(tiny_cfg(**extra, **{"train.compile": True}), progress=False, log=lines.append).run_dir
    assert "torch.compile: the model compiled" in lines
    assert losses(tried) == losses(plain)


def test_a_compiler_that_fails_trains_eagerly_but_out_of_memory_is_raised(tiny_cfg, monkeypatch):
    from training.loop import build

    class Broken(Wrapped):
        error = RuntimeError("no C++ compiler")

        def forward(self, *args, **kwargs):
            raise self.error

    monkeypatch.setattr(torch, "compile", lambda model, mode=None: Broken(model))
    lines = []
    run = build(tiny_cfg(**{"train.compile": True}), log=lines.append)
    assert not run.compiled and run.forward is run.model
    assert any(line.startswith("warning: torch.compile failed (RuntimeError: no C++ compiler)") for line in lines)
    assert all(p.grad is None for p in run.model.parameters())
    Broken.error = torch.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(torch.OutOfMemoryError):
        build(tiny_cfg(**{"train.compile": True}), log=lines.append)


@pytest.mark.parametrize("step", STEPS, ids=lambda s: " ".join(f"{k}={v}" for k, v in s.items()))
def test_losses_read_back_once_per_log_line_are_the_mean_of_their_steps(tiny_cfg, tmp_path, step):
    """The loop reads the loss off the device only when it logs: each line holds the mean of the steps since the
    last one, equal to the per-step losses of the same run logged at every step."""
    every = train(tiny_cfg(**{"train.out_dir": tmp_path / "every", **step}), **QUIET).run_dir
    sparse = train(tiny_cfg(**{"train.out_dir": tmp_path / "sparse", "train.log_interval": 3, **step}),
                   **QUIET).run_dir
    per_step = dict(losses(every))
    windows = [(3, [1, 2, 3]), (6, [4, 5, 6]), (9, [7, 8, 9]), (12, [10, 11, 12])]
    assert [i for i, _ in losses(sparse)] == [i for i, _ in windows]
    for (i, loss), (_, steps) in zip(losses(sparse), windows):
        assert loss == pytest.approx(sum(per_step[s] for s in steps) / 3, abs=1e-6)


def test_the_compile_check_calls_the_model_with_inputs_laid_out_as_a_real_step(tiny_cfg, monkeypatch):
    """torch.compile specialises to its inputs' strides and aliasing: a check made with other inputs (one tensor as
    both x and y, or contiguous tensors) compiled the whole model a second time at the first step."""
    from training.loop import build
    calls = []

    class Recorded(Wrapped):
        def forward(self, x, y):
            calls.append((x.shape, x.stride(), y.stride(), x.dtype, y.dtype, x is y,
                          x.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()))
            return super().forward(x, y)

    monkeypatch.setattr(torch, "compile", lambda model, mode=None: Recorded(model))
    run = build(tiny_cfg(**{"train.compile": True}), log=lambda *_: None)
    train_step(run, 1e-3)
    assert len(calls) == 2 and calls[0] == calls[1]


def test_cuda_graphs_are_off_on_a_cpu_with_the_reason_logged(tiny_cfg):
    from training.loop import build
    lines = []
    run = build(tiny_cfg(**{"train.cuda_graphs": True}), log=lines.append)
    assert run.graphed is None and "train.cuda_graphs: off (not on a GPU)" in lines
    assert train_step(run, 1e-3).isfinite()


def test_a_checkpoint_saves_a_recorded_steps_learning_rate_as_a_number():
    """The recorded step's optimizer reads its learning rate from a tensor and is ``capturable``; its state dict
    holds neither, so the checkpoint resumes anywhere (here: into an eager optimizer on the CPU, which steps)."""
    from training.step_graph import plain_param_groups
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=torch.tensor(0.5), capturable=True)
    optimizer.register_state_dict_post_hook(plain_param_groups)
    state = optimizer.state_dict()
    assert state["param_groups"][0]["lr"] == 0.5 and type(state["param_groups"][0]["lr"]) is float
    assert state["param_groups"][0]["capturable"] is False
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)           # the live optimizer is untouched
    fresh = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=1e-3)
    fresh.load_state_dict(state)
    fresh.param_groups[0]["params"][0].grad = torch.ones(3)
    fresh.step()
    assert fresh.param_groups[0]["lr"] == 0.5


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a GPU")
@pytest.mark.parametrize("fused", [True, False])
def test_a_recorded_step_trains_as_the_eager_step_does(tiny_cfg, fused):
    """Twelve steps with dropout and two micro-batches, the learning rate changing every step (warm-up, decay):
    replaying the recorded step gives the eager step's losses and weights."""
    from training.loop import build
    from training.schedule import lr_at
    runs, losses = {}, {}
    for graphs in (False, True):
        cfg = tiny_cfg(**{"train.device": "cuda", "train.cuda_graphs": graphs, "model.dropout": 0.1,
                          "train.grad_accum": 2, "train.fused_optimizer": fused})
        run = runs[graphs] = build(cfg, log=lambda *_: None)
        losses[graphs] = [train_step(run, lr_at(i, cfg.train)).item() for i in range(cfg.train.max_iters)]
    assert runs[True].graphed.graph is not None and runs[False].graphed is None
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    for a, b in zip(runs[False].model.parameters(), runs[True].model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a GPU")
def test_a_failed_recording_on_cuda_trains_on_eagerly_as_the_eager_step_does(tiny_cfg):
    """A read-back of the loss while recording breaks the recording, as any operation a graph cannot hold would.
    The run warns and goes on eagerly, dropout drawing from the GPU's generator again, with the eager run's losses."""
    from training.loop import build
    from training.schedule import lr_at
    losses, lines = {}, []
    for graphs in (False, True):
        cfg = tiny_cfg(**{"train.device": "cuda", "train.cuda_graphs": graphs, "model.dropout": 0.1})
        run = build(cfg, log=lines.append)
        if graphs:
            update = run.graphed.update

            def reading_back(batches):
                loss = update(batches)
                if torch.cuda.is_current_stream_capturing():
                    loss.item()                         # not allowed while recording
                return loss
            run.graphed.update = reading_back
        losses[graphs] = [train_step(run, lr_at(i, cfg.train)).item() for i in range(cfg.train.max_iters)]
    assert run.graphed.eager and run.graphed.graph is None
    assert any("recording the training step as a CUDA graph failed" in line for line in lines)
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    torch.rand(4, device="cuda")                        # the default generator draws eagerly, outside training too


class Replayed:
    """Stands in for a CUDA graph on the CPU: recording keeps the function, each replay runs it again and writes
    its result into the recorded output. What it checks is the bookkeeping around a graph: that every replay
    reads the new batches and the new learning rate from where the recorded step reads them. A real graph,
    recorded while the gradients were None, writes them afresh at each replay; so the stand-in empties them."""

    def __init__(self, fn, optimizer):
        self.fn, self.optimizer, self.out = fn, optimizer, torch.zeros(())

    def replay(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.out.copy_(self.fn())


def recorded_on_the_cpu(monkeypatch, optimizer, fail: bool = False):
    from training import step_graph

    def record(fn):
        if fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        graph = Replayed(fn, optimizer())
        return graph, graph.out

    monkeypatch.setattr(step_graph, "record", record)
    monkeypatch.setattr(step_graph, "side_stream", lambda device: contextlib.nullcontext())


@pytest.mark.parametrize("fail", [False, True])
def test_a_recorded_step_replays_with_each_steps_batches_and_learning_rate(tiny_cfg, monkeypatch, fail):
    """The recorded step's bookkeeping on the CPU (a stand-in for the graph): twelve steps with dropout, two
    micro-batches and a learning rate that changes every step give the eager step's losses and weights; where
    recording fails, a warning, and the run goes on eagerly with the same losses."""
    import functools

    from training.loop import build, update
    from training.schedule import lr_at
    from training.step_graph import GraphedStep
    cfg = tiny_cfg(**{"model.dropout": 0.1, "train.grad_accum": 2})
    runs, losses, lines = {}, {}, []
    recorded_on_the_cpu(monkeypatch, lambda: runs[True].optimizer, fail)
    for graphs in (False, True):
        run = runs[graphs] = build(cfg, log=lambda *_: None)
        if graphs:
            run.graphed = GraphedStep(functools.partial(update, run), run.optimizer, run.device, lines.append)
        losses[graphs] = [train_step(run, lr_at(i, cfg.train)).item() for i in range(cfg.train.max_iters)]
    assert (runs[True].graphed.graph is None) == fail and runs[True].graphed.eager == fail
    assert any("recording the training step as a CUDA graph failed" in line for line in lines) == fail
    assert losses[True] == pytest.approx(losses[False], rel=1e-5) and len(set(losses[True])) == 12
    for a, b in zip(runs[False].model.parameters(), runs[True].model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    state = runs[True].optimizer.state_dict()["param_groups"][0]
    assert state["lr"] == pytest.approx(lr_at(11, cfg.train)) and state["capturable"] is False


@pytest.mark.parametrize("stop_at", [1, 2, 5])
def test_a_run_with_a_recorded_step_resumes_exactly(tiny_cfg, tmp_path, monkeypatch, stop_at):
    """Stopped and resumed, a run whose step is recorded (the stand-in graph on the CPU) matches the same run never
    stopped, bit for bit: the checkpoint holds the learning rate as a number and the resumed optimizer moves its
    step counts to where the recorded step reads them."""
    from training.step_graph import GraphedStep
    holder = {}

    def graphed_anywhere(run, update, log):
        holder["optimizer"] = run.optimizer
        return GraphedStep(functools.partial(update, run), run.optimizer, run.device, log)

    monkeypatch.setattr(loop, "graphed_step", graphed_anywhere)
    recorded_on_the_cpu(monkeypatch, lambda: holder["optimizer"])
    extra = {"model.dropout": 0.1, "train.grad_accum": 2, "train.cuda_graphs": True}
    full = train(tiny_cfg(**extra, **{"train.out_dir": tmp_path / "full"}), **QUIET).run_dir
    with monkeypatch.context() as stopping:
        stopping.setattr(loop, "StopRequest", StopAfter)
        StopAfter.n, StopAfter.monkeypatch = stop_at, stopping
        stopped = train(tiny_cfg(**extra), **QUIET)
    assert stopped.interrupted and stopped.iter == stop_at
    assert type(load_checkpoint(stopped.run_dir / "last.pt")["optimizer"]["param_groups"][0]["lr"]) is float
    resumed = train(resume=stopped.run_dir, **QUIET)
    assert resumed.iter == 12 and losses(resumed.run_dir) == losses(full)
