"""The run directory: one folder per run, owned by one training process at a time.

It holds ``last.pt`` (latest state), ``best.pt`` (lowest validation loss), ``metrics.jsonl`` (one JSON object per
logged step or evaluation), ``config.yaml`` (the resolved config) and ``command.txt`` (how the run was started, then
one line per resume). A lock file stops a second ``train.py`` from writing into the same folder; the operating system
releases it when the process ends, however it ends (even SIGKILL), so a stale lock never blocks a resume.
Files that are rewritten are replaced atomically, so a kill leaves the old or the new version, never half of one.
"""
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

from core.atomic_files import TMP_PREFIX, atomic_write
from core.checkpoint import load_checkpoint
from errors import UserError
from training.tensorboard import EVENT_FILES

try:
    import fcntl
except ImportError:            # Windows
    fcntl = None
    import msvcrt


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "train.lock"
        self.file = None

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            if fcntl is not None:
                fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            self.file.close()
            raise UserError(f"run directory {self.path.parent} is in use by another training process "
                            f"(lock {self.path}); wait for it or choose another train.out_dir") from None
        return self

    def __exit__(self, *exc):
        self.file.close()              # closing the file releases the lock


def in_use(run_dir: Path) -> bool:
    """Whether a training process holds ``run_dir``'s lock now (whoever started it)."""
    if not (Path(run_dir) / "train.lock").is_file():
        return False
    try:
        with RunLock(run_dir):
            return False
    except UserError:
        return True


RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.yaml", "command.txt", "train.lock")
MARKER = ".gpt-playground-run"          # this folder is a run of this project, and train.py may write into it
CHECKPOINTS = ("best.pt", "last.pt")    # in the order --overwrite removes them: never a stale best.pt by a new last.pt


def writable_folder(folder: str | Path, what: str) -> Path:
    """Create ``folder`` and prove a file can be written in it, before any work whose results would go there; a
    one-line error ("cannot write to <what> <folder>: Not a directory") otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to {what} {folder}: {e.strerror or e}") from None
    return folder


def prepare_run_dir(run_dir: Path) -> Path:
    """Create the folder, or a one-line error when it is not ours (``check_ours``), cannot be written to, or one of
    the run's files in it is something else than a file (a folder named metrics.jsonl, say)."""
    if Path(run_dir).is_dir():
        check_ours(run_dir)
    run_dir = writable_folder(run_dir, "run directory")
    for name in RUN_FILES:
        if (run_dir / name).exists() and not (run_dir / name).is_file():
            raise UserError(f"run directory {run_dir}: {name} is not a file; move it out of the way")
    return run_dir


def check_ours(run_dir: Path) -> None:
    """A folder is ours to write into when it is new (empty, or only a starting run's lock), or when it carries our
    marker *and* every checkpoint in it loads as one of ours. File names prove nothing: other tools write a
    ``best.pt`` or a ``config.yaml`` too. Anything else (a folder of the user's, ``/``, another tool's run) is
    refused before a single file is written there, with or without --overwrite."""
    run_dir = Path(run_dir)
    entries = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(TMP_PREFIX))
    if set(entries) <= {"train.lock"}:                          # new, or a run starting in another process
        return
    if MARKER not in entries:
        shown = ", ".join(entries)
        legacy = (f"; if it is a run of this project from before runs were marked, mark it: touch {run_dir / MARKER}"
                  if any(loads_as_ours(run_dir / name) for name in CHECKPOINTS) else "")
        raise UserError(f"run directory {run_dir} holds files that are not a run of this project "
                        f"({shown if len(shown) <= 120 else shown[:119] + '…'}; no {MARKER} marker); train into an "
                        f"empty or new folder (--set train.out_dir=...){legacy}")
    for name in CHECKPOINTS:
        if (run_dir / name).exists():
            try:
                load_checkpoint(run_dir / name)
            except UserError as e:
                raise UserError(f"run directory {run_dir} is marked as a run of this project, but its {name} is "
                                f"not one of its checkpoints ({e}); it is left as it is: move it away, or train "
                                "into another folder (--set train.out_dir=...)") from None


def loads_as_ours(path: Path) -> bool:
    try:
        return path.is_file() and bool(load_checkpoint(path))
    except UserError:
        return False


def mark_ours(run_dir: Path) -> None:
    if not (Path(run_dir) / MARKER).exists():
        (Path(run_dir) / MARKER).write_text("A run folder of the Gen AI Learn Playground: train.py writes here.\n",
                                            encoding="utf-8")


def clear_checkpoints(run_dir: Path) -> None:
    """--overwrite: the old run's checkpoints and metrics go before the new run starts, best.pt first, so that
    an early stop never leaves an old best.pt (maybe of another shape) beside the new run's last.pt; its TensorBoard
    event files too (``train.tensorboard``), or TensorBoard would show the two runs as one."""
    for name in (*CHECKPOINTS, "metrics.jsonl"):
        (Path(run_dir) / name).unlink(missing_ok=True)
    for events in Path(run_dir).glob(EVENT_FILES):
        events.unlink(missing_ok=True)


STAMP = "# written by train.py, sha256 of what follows: "


def write_config_file(path: Path, text: str) -> None:
    """config.yaml with a first line that fingerprints the rest, so that a resume can tell an edit by hand from a
    file written by an earlier start (even one killed before its first checkpoint)."""
    write_run_file(path, f"{STAMP}{hashlib.sha256(text.encode()).hexdigest()[:16]}\n{text}")


def edited_config_text(path: Path) -> str | None:
    """The text of config.yaml when it was changed by hand since train.py wrote it, else None."""
    if not path.is_file():
        return None
    first, _, rest = path.read_text(encoding="utf-8", errors="replace").partition("\n")
    if first.startswith(STAMP) and first[len(STAMP):] == hashlib.sha256(rest.encode()).hexdigest()[:16]:
        return None
    return rest if first.startswith(STAMP) else f"{first}\n{rest}"


def write_run_file(path: Path, text: str) -> None:
    """Replace a text file of the run atomically, or a one-line error when it cannot be written."""
    try:
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def record_command(path: Path, resumed: bool) -> None:
    """The command line of a new run, or one more line under the original for a resume."""
    earlier = path.read_text(encoding="utf-8", errors="replace") if resumed and path.exists() else ""
    write_run_file(path, earlier + shlex.join(sys.argv) + "\n")


class MetricsLog:
    """Appends one JSON line per record; on resume, drops lines past the checkpoint so the file stays one history.
    With ``tensorboard`` (``training.tensorboard.TensorBoardLog``), each record goes there too."""

    def __init__(self, path: Path, keep_up_to: int | None, tensorboard=None):
        self.path, self.tensorboard = Path(path), tensorboard
        if keep_up_to is None:
            write_run_file(self.path, "")
        elif self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if line.strip() and _complete_record(line, keep_up_to)]
            write_run_file(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UserError(f"cannot write {self.path}: {e.strerror or e}") from None
        if self.tensorboard is not None:
            self.tensorboard.add(record)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _complete_record(line: str, keep_up_to: int) -> bool:
    try:
        return json.loads(line).get("iter", 0) <= keep_up_to
    except json.JSONDecodeError:       # a line cut short by a kill
        return False


def read_metrics(path: Path) -> list[dict]:
    """The records of ``metrics.jsonl``, leaving out a line that does not parse: the last one, cut short by a kill or
    still being appended while the file is read (as the page reads a run that is training)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
