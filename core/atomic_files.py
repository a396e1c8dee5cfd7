"""Files replaced whole or not at all: a checkpoint, a run's config, never half-written.

A temp file is written beside the target, flushed to disk and renamed over it (a rename within a folder is atomic),
then the folder itself is flushed so that the rename survives a power cut. A process killed mid-write leaves only a
temp file, which the next run in that folder removes.
"""
import os
import shutil
from pathlib import Path

from core.fault_injection import kill_point
from errors import UserError

TMP_PREFIX = ".tmp-"


def atomic_write(path: Path, write) -> None:
    """Call write(file) on a temp file beside ``path``, fsync it, rename it over ``path``, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            kill_point(f"write:{path.name}")
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def atomic_copy(source: Path, path: Path) -> None:
    """``path`` becomes a copy of the checkpoint ``source`` as one atomic rename: a hard link where the file system
    has them (no second write of the same bytes: best.pt and last.pt are often the same state), else a full copy.
    A later replacement of either file renames a new file over its name, so the other keeps its bytes."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        kill_point(f"write:{path.name}")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous one is untouched") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def remove_stray_temp_files(run_dir: Path) -> None:
    """Temp files left by a process killed mid-write (never renamed, so never a checkpoint)."""
    for tmp in Path(run_dir).glob(f"{TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """Flush the folder's entries (a rename into it) to disk, where the platform can."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
