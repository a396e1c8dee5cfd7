"""TensorBoard scalars beside ``metrics.jsonl``, for those who read their runs there: with ``train.tensorboard: true``
each record the trainer logs is also written as scalars into the run folder, so ``tensorboard --logdir runs`` shows
every run's curves side by side (each run is named after its folder).

``metrics.jsonl`` stays the record: the page, resume and the tests read it, and the event files are a copy in
TensorBoard's format, written by torch's ``SummaryWriter`` (the ``tensorboard`` package, an optional extra). Like
``metrics.jsonl`` they are written through at every record, so a kill loses nothing the metrics kept. A resumed run
goes back to its last checkpoint and takes the steps after it again: ``MetricsLog`` drops the lines past the
checkpoint, and ``purge_step`` tells TensorBoard to hide the events past it, so neither shows a step twice.
"""
from pathlib import Path

from errors import UserError

# metrics.jsonl key → TensorBoard tag (the part before "/" groups the charts)
TAGS = {"loss": "loss/train",                      # the mean training loss since the last log line
        "val_loss": "loss/val",                    # an evaluation: held-out text
        "train_loss": "loss/train_eval",           # the same evaluation on training text
        "val_loss_whole": "loss/val_whole_split",  # the whole val split (train.target_val_loss runs)
        "lr": "optimizer/lr",
        "grad_norm": "optimizer/grad_norm",         # ‖g‖ before clipping, averaged since the last log line
        "tokens_per_s": "speed/tokens_per_s"}
EVENT_FILES = "events.out.tfevents.*"             # what SummaryWriter writes into the run folder


def summary_writer_class():
    """torch's ``SummaryWriter``, or a one-line error naming the package to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("train.tensorboard is true but the tensorboard package is not installed: pip install "
                        "tensorboard (or set train.tensorboard=false; metrics.jsonl is written either way)") from None
    return SummaryWriter


class TensorBoardLog:
    """The scalars of one run, in its folder. ``resumed_at``: the step of the checkpoint a resumed run starts from
    (events logged after it by the earlier attempt are hidden), None for a new run."""

    def __init__(self, run_dir: Path, resumed_at: int | None):
        writer = summary_writer_class()
        try:
            self.writer = writer(log_dir=str(run_dir), purge_step=None if resumed_at is None else resumed_at + 1)
        except OSError as e:
            raise UserError(f"cannot write TensorBoard events into {run_dir}: {e.strerror or e}") from None

    def add(self, record: dict) -> None:
        for key, tag in TAGS.items():
            if key in record:
                self.writer.add_scalar(tag, record[key], global_step=record["iter"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
