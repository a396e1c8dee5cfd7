"""Making the training step faster, apart from the loop it speeds up (``training.loop``): torch.compile, and the
step recorded as a CUDA graph. Each is tried once when a run is built; where it cannot be had, the run trains
eagerly, with a warning, and takes the same steps.

    train.compile       the model (or each block) through torch.compile, which fuses its small kernels
    train.cuda_graphs   on a GPU: compiled, torch.compile's ``mode="reduce-overhead"``; eager, the whole update
                        (forward, backward, clip, AdamW) recorded once as a CUDA graph and replayed
                        (``training.step_graph``)
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch

from core.device import autocast
from training.step_graph import GraphedStep

if TYPE_CHECKING:
    from training.loop import Run


def compile_if_it_works(run: Run, log) -> tuple[torch.nn.Module, bool]:
    """``torch.compile`` the model (or each of its blocks) and try it once, forward and backward on a batch of the
    run's shape (compiling happens then). Where compiling fails (no C++ compiler, an unsupported platform) the run
    trains eagerly, with a warning; running out of memory is not a compile failure and is raised. The try draws no
    random numbers and leaves no gradients, so the run is the same as one that never tried."""
    train = run.cfg.train
    graphs = compiled_with_graphs(run)
    mode = "reduce-overhead" if graphs else None
    # shaped and laid out as get_batch's (B, T) views of (B, T + 1) windows: the compiled code is specialised
    # to its inputs' strides and to whether they overlap, and the first real step then reuses it
    windows = torch.zeros(train.batch_size, run.cfg.model.block_size + 1, dtype=torch.long, device=run.device)
    x, y = windows[:, :-1], windows[:, 1:]
    try:
        if train.compile_scope == "blocks":     # the blocks share their code, so one compilation serves them all
            compiled = run.model
            for block in run.model.blocks:
                block.compile(mode=mode)
        else:
            compiled = torch.compile(run.model, mode=mode)
        with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
            with autocast(run.device, run.dtype):
                _, loss = compiled(x, y)
            loss.backward()
    except torch.OutOfMemoryError:
        raise
    except Exception as e:
        log(f"warning: torch.compile failed ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
            "training without it")
        if train.compile_scope == "blocks":
            torch.compiler.set_stance("force_eager")     # the compiled blocks run their eager code from now on
        return run.model, False
    finally:
        run.model.zero_grad(set_to_none=True)
    log(f"torch.compile: {'each block' if train.compile_scope == 'blocks' else 'the model'} compiled"
        + (", each step replayed as CUDA graphs" if graphs else ""))
    return compiled, True


def compiled_with_graphs(run: Run) -> bool:
    """Whether a compiled model replays its steps as CUDA graphs (``mode="reduce-overhead"``): on a GPU, when
    ``train.cuda_graphs`` asks."""
    return run.cfg.train.cuda_graphs and run.device.type == "cuda"


def graphed_step(run: Run, update, log) -> GraphedStep | None:
    """The eager update recorded as a CUDA graph, where that can be: on a GPU, in one process (recording a step
    that talks to other processes needs their graphs to match; DDP trains without)."""
    if run.device.type != "cuda" or run.ddp.enabled:
        log(f"train.cuda_graphs: off ({'not on a GPU' if run.device.type != 'cuda' else 'several processes'})")
        return None
    log("CUDA graphs: the training step is recorded at the second step and replayed from then on")
    return GraphedStep(functools.partial(update, run), run.optimizer, run.device, log)
