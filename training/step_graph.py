"""A training step recorded once as a CUDA graph and replayed: one launch per step instead of one per kernel.

A small model's step is hundreds of short kernels. Launched one by one from Python, the GPU idles between them,
waiting for the next launch. Recorded once (``torch.cuda.graph``), the whole step, forward, backward, gradient
clipping and the AdamW update, is replayed by one call, reading its inputs from the same addresses every time:

    each step:  copy the new batches into the recorded ones;  write the learning rate into its tensor;  replay

So nothing a step depends on may be a Python number baked into the recording: the learning rate is a tensor the
optimizer reads (AdamW takes one when ``capturable``), and the batches are copied in. Dropout's random numbers come
from the GPU's generator, whose offset each replay advances as the eager step would, so the masks are the same.

The first step runs eagerly, on a side stream: recording needs the lazy set-up done first (the optimizer's moments,
the matmul libraries' workspaces). The second step is recorded and then replayed, as is every later one: every step
is a real one, and a run with graphs takes the same steps as one without (a test compares the two on a GPU; on a
CPU a stand-in for the graph checks the bookkeeping). With ``torch.compile`` the model gets its graphs from
``mode="reduce-overhead"`` instead (``training.speed.compile_if_it_works``).
"""
from collections.abc import Callable

import torch

from model.cuda_graphs import record, side_stream, why_recording_failed

Batches = list[tuple[torch.Tensor, torch.Tensor]]


class GraphedStep:
    """``update(batches) -> loss`` (forward and backward over the micro-batches, then the optimizer's step; it
    leaves the gradients in place) recorded as a CUDA graph at its second call and replayed from then on. Where
    recording fails (an operation a graph cannot hold), the step goes on eagerly, with a warning."""

    def __init__(self, update: Callable[[Batches], torch.Tensor], optimizer: torch.optim.Optimizer,
                 device: torch.device, log=print):
        self.update, self.optimizer, self.device, self.log = update, optimizer, device, log
        self.lr: torch.Tensor | None = None         # the learning rate the recorded update reads
        self.graph = None                           # the recording, once made
        self.eager = False                          # recording failed: every step runs eagerly
        self.batches: Batches = []                  # the recorded step's inputs, refilled before each replay
        self.loss: torch.Tensor | None = None       # the recorded step's output, rewritten by each replay

    def __call__(self, batches: Batches, lr: float) -> torch.Tensor:
        """One optimizer step on ``batches`` at learning rate ``lr``; its mean loss, on the GPU (not waited for)."""
        if self.lr is None:
            return self._first_step(batches, lr)
        self.lr.fill_(lr)
        if self.graph is None and not self.eager:
            self._record(batches)                       # on copies of these batches
        elif not self.eager:
            for (x, y), (recorded_x, recorded_y) in zip(batches, self.batches):
                recorded_x.copy_(x)
                recorded_y.copy_(y)
        if self.eager:
            return self._eager_step(batches)
        self.graph.replay()
        return self.loss.clone()                        # the next replay rewrites self.loss

    def _first_step(self, batches: Batches, lr: float) -> torch.Tensor:
        self.lr = torch.tensor(lr, dtype=torch.float32, device=self.device)
        for group in self.optimizer.param_groups:
            group["lr"], group["capturable"] = self.lr, True
        for state in self.optimizer.state.values():     # a resumed eager optimizer counts its steps on the CPU
            if "step" in state:
                state["step"] = state["step"].to(self.device, torch.float32)
        self.optimizer.register_state_dict_post_hook(plain_param_groups)
        with side_stream(self.device):
            return self._eager_step(batches)            # the recording then allocates the gradients in its own memory

    def _eager_step(self, batches: Batches) -> torch.Tensor:
        loss = self.update(batches)
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def _record(self, batches: Batches) -> None:
        """Record the update of copies of ``batches`` (recording runs nothing: the caller replays it next)."""
        self.batches = [(x.clone(), y.clone()) for x, y in batches]
        torch.cuda.empty_cache()                        # give back the eager step's cached memory before recording
        try:
            self.graph, self.loss = record(lambda: self.update(self.batches))
        except torch.OutOfMemoryError:
            raise
        except Exception as e:
            self.log(f"warning: recording the training step as a CUDA graph failed ({why_recording_failed(e)}); "
                     "training without")
            self.eager, self.graph, self.batches = True, None, []
            self.optimizer.zero_grad(set_to_none=True)  # the gradients the failed recording left, never computed


def plain_param_groups(optimizer: torch.optim.Optimizer, state: dict) -> dict:
    """Save the learning rate as a number and ``capturable`` off: a checkpoint of a run with graphs is the same as
    one without, and resumes with or without them, on any device."""
    for group in state["param_groups"]:
        group["lr"], group["capturable"] = float(group["lr"]), False
    return state
