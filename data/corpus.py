"""The training text as one long array of token ids, split into train and validation parts.

A corpus is a UTF-8 text file or a folder of ``.txt`` files (joined in name order). Encoding a large corpus takes
a while, so the ids are cached as a ``.npy`` array keyed by the text's hash and the tokenizer's fingerprint: edit
the file or change the tokenizer and the cache is rebuilt. The cache is memory-mapped, so even a corpus larger than
memory costs nothing to open. Training batches are random windows of block_size + 1 tokens.
"""
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.config import DataConfig
from data.tokenization import Tokenizer, train_tokenizer
from errors import UserError


MAX_CORPUS_BYTES = 1 << 30


def read_corpus(path: str | Path, limit: int = MAX_CORPUS_BYTES) -> str:
    """The corpus text, or a UserError naming the file and the problem (missing, not a regular file, over
    ``limit`` bytes, empty, binary, not UTF-8). The text and its ids are held in memory, so the size is checked
    before anything is read, and no file is read past the limit (a file that grows, or a device)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"corpus folder {path} holds no .txt files")
    elif path.is_file():
        files = [path]
    elif path.exists():
        raise UserError(f"corpus {path} is not a regular file or a folder")
    else:
        raise UserError(f"corpus {path} does not exist")
    too_big = f"corpus {path} is over {limit / 2**30:g} GiB; this trainer holds the text in memory: use a part of it"
    if sum(file.stat().st_size for file in files) > limit:
        raise UserError(too_big)
    parts, total = [], 0
    for file in files:
        try:
            with open(file, "rb") as f:
                raw = f.read(limit - total + 1)
        except OSError as e:
            raise UserError(f"cannot read corpus file {file}: {e.strerror or e}") from None
        total += len(raw)
        if total > limit:
            raise UserError(too_big)
        if b"\x00" in raw:
            raise UserError(f"corpus file {file} looks binary (it contains NUL bytes); give a UTF-8 text file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"corpus file {file} is not UTF-8 text (bad byte at offset {e.start})") from None
        parts.append(text if text.endswith("\n") or not text else text + "\n")
    text = "".join(parts)
    if not text.strip():
        raise UserError(f"corpus {path} is empty")
    return text


def encode_cached(text: str, tokenizer: Tokenizer, cache_dir: str | Path) -> np.ndarray:
    """Token ids of ``text`` (uint16 when the vocabulary fits, else uint32), memory-mapped from the cache."""
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24] + "-" + tokenizer.fingerprint()
    cache = Path(cache_dir) / f"{key}.npy"
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
    if cache.exists():
        try:
            ids = np.load(cache, mmap_mode="r")
            if ids.dtype == dtype and ids.ndim == 1 and ids.size and int(ids.max()) < tokenizer.vocab_size:
                return ids
        except (ValueError, OSError):
            pass
        cache.unlink(missing_ok=True)       # truncated, swapped or out of the vocabulary: rebuilt, never trusted
    if hasattr(tokenizer, "encode_batch"):       # byte-level kinds encode line by line, in parallel
        ids = np.fromiter((i for line in tokenizer.encode_batch(text.splitlines(keepends=True)) for i in line), dtype)
    else:
        ids = np.array(tokenizer.encode(text), dtype=dtype)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, ids)
        os.replace(tmp, cache)
    except OSError:
        return ids                                   # an unwritable cache only costs time
    return np.load(cache, mmap_mode="r")


@dataclass
class Splits:
    train: torch.Tensor                              # (N_train,) token ids
    val: torch.Tensor                                # (N_val,)

    def to(self, device: torch.device) -> "Splits":
        """Both parts on ``device``: on a GPU the batches are then cut where the model reads them, and int32 ids
        take half the memory of int64 (``get_batch`` returns int64 windows)."""
        if device.type == "cpu":
            return self
        return Splits(self.train.to(device, torch.int32), self.val.to(device, torch.int32))

    def nbytes_on(self, device: torch.device) -> int:
        return (len(self.train) + len(self.val)) * (8 if device.type == "cpu" else 4)


def split_tokens(ids: np.ndarray, val_fraction: float, block_size: int, name: str) -> Splits:
    """First (1 - val_fraction) of the ids for training, the rest for validation. Each part needs at least one
    full window (block_size + 1 tokens)."""
    n_val = int(len(ids) * val_fraction)
    parts = {"train": ids[: len(ids) - n_val], "val": ids[len(ids) - n_val :]}
    for part, part_ids in parts.items():
        if len(part_ids) <= block_size:
            raise UserError(f"corpus {name} is too short: its {part} split has {len(part_ids)} tokens but one training "
                            f"window needs block_size + 1 = {block_size + 1} (use a longer text or a smaller block_size)")
    return Splits(*(torch.from_numpy(np.asarray(p, dtype=np.int64)) for p in parts.values()))


def load_corpus(data: DataConfig, block_size: int, tokenizer: Tokenizer | None = None,
                log=print) -> tuple[Tokenizer, Splits]:
    """The corpus of ``data.path`` as train and val token ids, with ``tokenizer`` or one trained on the corpus."""
    text = read_corpus(data.path)
    if tokenizer is None:
        started = time.perf_counter()
        tokenizer = train_tokenizer(data.tokenizer, text, data.bpe_vocab_size, data.word_vocab_size)
        log(f"tokenizer: {tokenizer.kind}, {tokenizer.vocab_size} tokens ({time.perf_counter() - started:.1f}s)")
    try:
        ids = encode_cached(text, tokenizer, data.cache_dir)
    except UserError as e:              # fine-tuning a char model on a corpus with characters it never saw
        raise UserError(f"corpus {data.path}: {e}; a fine-tuned model keeps its tokenizer, so fine-tune a bpe "
                        "model on new text (any UTF-8 encodes), or train a new model on it") from None
    splits = split_tokens(ids, data.val_fraction, block_size, data.path)
    log(f"corpus: {data.path}, {len(text):,} characters → {len(ids):,} tokens "
        f"({len(splits.train):,} train / {len(splits.val):,} val)")
    return tokenizer, splits


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator,
              rank: int = 0, world_size: int = 1):
    """Random windows: x (B, T) and the targets y (B, T), y being x shifted one token to the left, on ``data``'s
    device.

    The starts are drawn on the CPU by ``generator`` (its state goes into checkpoints, so a resumed run draws the
    same batches on any device). With several processes, all draw the same world_size·B starts and each keeps its
    own B rows.
    """
    starts = torch.randint(len(data) - block_size, (batch_size * world_size,), generator=generator)
    starts = starts[rank * batch_size : (rank + 1) * batch_size]
    if data.device.type == "cuda":      # B numbers to the GPU without waiting for it; the windows are cut there
        starts = starts.pin_memory().to(data.device, non_blocking=True)
    offsets = torch.arange(block_size + 1, device=data.device)
    windows = data[starts.unsqueeze(1) + offsets].long()                                # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]
