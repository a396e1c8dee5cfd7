"""Bad input, one row each: a one-line ``error: ...`` on stderr, exit code 2, no traceback, nothing overwritten.

The rows run the command lines' ``main()`` in this process (the same code path as the real commands, without paying
for a new interpreter each time); ``test_real_processes_exit_2`` runs a few of them as real processes. Every row
starts from a copy of a finished run, and every file of that run must have the same bytes afterwards, even for rows
that pass ``--overwrite``: bad input is refused before anything is written.
"""
import errno
import os
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import bench
import generate
import learn
import train
from core.atomic_files import TMP_PREFIX
from core.checkpoint import load_checkpoint
from data.tokenization import CharTokenizer
from tests.conftest import run_cli, tiny_overrides
from core import atomic_files

TINY = "<tiny>"                                         # expands to tiny_overrides() for a fresh run in {run}
FRESH = ["--no-progress", "--overwrite", "--set", TINY]  # a new run over {run}; more --set values may follow
ROOT_WRITES_ANYWHERE = hasattr(os, "geteuid") and os.geteuid() == 0


def row(name, command, args, message, marks=()):
    """command: the module whose main() runs; args: its argv ({names} from ``paths``); message: part of the error."""
    return pytest.param(command, args, message, id=name, marks=marks)


ROWS = [
    # config: file, keys, types, values
    row("config: unknown key", train, [*FRESH, "train.nope=1"], "unknown key train.nope"),
    row("config: unknown section", train, [*FRESH, "modle.n_layer=1"], "unknown section 'modle'"),
    row("config: wrong type", train, [*FRESH, "model.n_layer=two"], "model.n_layer must be int, got 'two'"),
    row("config: bool for int", train, [*FRESH, "train.batch_size=true"], "train.batch_size must be int, got True"),
    row("config: negative size", train, [*FRESH, "model.n_embd=-32"], "model.n_embd must be > 0, got -32"),
    row("config: zero layers", train, [*FRESH, "model.n_layer=0"], "model.n_layer must be > 0, got 0"),
    row("config: n_embd % n_head", train, [*FRESH, "model.n_embd=30", "model.n_head=4"],
        "model.n_embd (30) must be divisible by model.n_head (4)"),
    row("config: lr = 0", train, [*FRESH, "train.lr=0"], "train.lr must be > 0, got 0.0"),
    row("config: lr < 0", train, [*FRESH, "train.lr=-1e-3"], "train.lr must be > 0, got -0.001"),
    row("config: lr NaN", train, [*FRESH, "train.lr=.nan"], "train.lr must be a finite number, got nan"),
    row("config: dropout 1", train, [*FRESH, "model.dropout=1"], "model.dropout must be in [0, 1), got 1.0"),
    row("config: seed beyond 64 bits", train, [*FRESH, f"train.seed={2**64}"],
        f"train.seed must be in 0..{2**64 - 1} (64 bits), got {2**64}"),
    row("config: threads 100000", train, [*FRESH, "train.threads=100000"], "train.threads must be <= 1,024, got 100,000"),
    row("config: n_embd 1e8", train, [*FRESH, "model.n_embd=100000000", "model.n_head=1"],
        "model.n_embd must be <= 65,536, got 100,000,000"),
    row("config: eval_iters huge", train, [*FRESH, "train.eval_iters=10000000"],
        "train.eval_iters must be <= 1,000,000, got 10,000,000"),
    row("config: model larger than memory", train, [*FRESH, "model.n_layer=1024", "model.n_embd=65536", "model.n_head=64"],
        "training this model (52,776,828,403,712 parameters, batch 4) needs at least 786,724.0 GiB of memory but cpu"),
    row("config: tokenizer kind", train, [*FRESH, "data.tokenizer=words"], "tokenizer must be 'word', 'char', 'bpe'"),
    row("config: bpe vocab < 256", train, [*FRESH, "data.tokenizer=bpe", "data.bpe_vocab_size=100"],
        "data.bpe_vocab_size must be >= 256"),
    row("config: empty out_dir", train, [*FRESH, "train.out_dir="], "train.out_dir must not be empty"),
    row("config: malformed --set", train, [*FRESH, "max_iters=5"], "must look like section.key=value"),
    row("config: file missing", train, ["--config", "{tmp}/missing.yaml", *FRESH],
        "config file {tmp}/missing.yaml does not exist"),
    row("config: file is a folder", train, ["--config", "{tmp}", *FRESH],
        "cannot read config file {tmp}: Is a directory"),
    row("config: not YAML", train, ["--config", "{bad_yaml}", *FRESH], "{bad_yaml} is not valid YAML"),
    row("config: YAML list", train, ["--config", "{list_yaml}", *FRESH], "expected a mapping of sections"),
    row("config: endless file", train, ["--config", "/dev/zero", *FRESH], "config file /dev/zero is over 1024 KiB"),
    row("config: alias bomb", train, ["--config", "{alias_bomb}", *FRESH], "aliases (*name) are not allowed"),
    row("config: section twice", train, ["--config", "{twice_yaml}", *FRESH], "key 'train' is given twice"),
    row("config: device missing", train, [*FRESH, "train.device=cuda"], "device 'cuda' is not available",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    # corpora
    row("corpus: block larger than corpus", train, [*FRESH, "model.block_size=4096"],
        "corpus {corpus} is too short: its train split has 1656 tokens but one training window needs"),
    row("corpus: block larger than val split", train, [*FRESH, "model.block_size=200"],
        "corpus {corpus} is too short: its val split has 184 tokens"),
    row("corpus: missing", train, ["--data", "{tmp}/nope.txt", *FRESH], "corpus {tmp}/nope.txt does not exist"),
    row("corpus: empty", train, ["--data", "{empty}", *FRESH], "corpus {empty} is empty"),
    row("corpus: whitespace only", train, ["--data", "{blank}", *FRESH], "corpus {blank} is empty"),
    row("corpus: binary", train, ["--data", "{binary}", *FRESH], "corpus file {binary} looks binary"),
    row("corpus: not UTF-8", train, ["--data", "{latin1}", *FRESH],
        "corpus file {latin1} is not UTF-8 text (bad byte at offset 3)"),
    row("corpus: 64 GB sparse file", train, ["--data", "{sparse}", *FRESH],
        "corpus {sparse} is over 1 GiB; this trainer holds the text in memory"),
    row("corpus: a device", train, ["--data", "/dev/zero", *FRESH], "corpus /dev/zero is not a regular file"),
    row("corpus: empty --data", train, ["--data", "", *FRESH], "data.path must not be empty"),
    row("corpus: folder without .txt", train, ["--data", "{no_txt}", *FRESH],
        "corpus folder {no_txt} holds no .txt files"),
    # run directories
    row("run dir: under a regular file", train, [*FRESH, "train.out_dir={a_file}/run"],
        "cannot write to run directory {a_file}/run: Not a directory"),
    row("run dir: metrics.jsonl is a folder", train, ["--no-progress", "--resume", "{metrics_dir_run}"],
        "run directory {metrics_dir_run}: metrics.jsonl is not a file; move it out of the way"),
    # output folders of the other commands: checked before any work
    row("learn: figures under a file", learn, ["tokenize", "--checkpoint", "{run}/best.pt", "--out", "{a_file}/figs"],
        "cannot write to figure folder {a_file}/figs: Not a directory"),
    row("learn: no training steps", learn, ["position", "--steps", "0"], "--steps must be in 1..100,000, got 0"),
    row("bench: results under a file", bench, ["--data", "{corpus}", "--out", "{a_file}/sub/r.json"],
        "cannot write to results folder {a_file}/sub: Not a directory"),
    row("bench: results path is a folder", bench, ["--data", "{corpus}", "--out", "{tmp}"],
        "--out {tmp} is a folder; give a file name"),
    row("bench: --ttl-variant without overrides", bench, ["--data", "{corpus}", "--ttl-variant", "a.yaml"],
        "--ttl-variant a.yaml needs overrides after the config"),
    row("run dir: read-only", train, [*FRESH, "train.out_dir={read_only}/run"],
        "cannot write to run directory {read_only}/run: Permission denied",
        marks=pytest.mark.skipif(ROOT_WRITES_ANYWHERE, reason="root writes through file permissions")),
    row("run dir: holds checkpoints", train, ["--no-progress", "--set", TINY], "already holds a checkpoint"),
    row("run dir: nothing to resume", train, ["--resume", "{tmp}"], "checkpoint {tmp}/last.pt does not exist"),
    row("resume: model changed", train, ["--no-progress", "--resume", "{run}", "--set", "model.n_layer=3"],
        "model.* cannot change when resuming"),
    row("init-from: missing", train, ["--init-from", "{tmp}/none.pt", *FRESH],
        "checkpoint {tmp}/none.pt does not exist"),
    row("init-from: corpus outside vocab", train, ["--init-from", "{run}/best.pt", "--data", "{zebra}", *FRESH],
        "corpus {zebra}: characters 'Z', 'b', '!' are not in this model's vocabulary"),
    # generate.py flags
    row("generate: temperature < 0", generate, ["--temperature", "-1"], "--temperature must be a finite number >= 0"),
    row("generate: temperature NaN", generate, ["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    row("generate: top_p = 0", generate, ["--top-p", "0"], "--top-p must be in (0, 1], got 0.0"),
    row("generate: top_p > 1", generate, ["--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
    row("generate: top_k < 1", generate, ["--top-k", "0"], "--top-k must be in 1..16777216, got 0"),
    row("generate: top_k huge", generate, ["--top-k", str(2**40)], "--top-k must be in 1..16777216, got 1099511627776"),
    row("generate: max tokens < 0", generate, ["--max-new-tokens", "-3"], "--max-new-tokens must be in 0..1,000,000, got -3"),
    row("generate: max tokens unbounded", generate, ["--max-new-tokens", str(10**11)],
        "--max-new-tokens must be in 0..1,000,000, got 100,000,000,000"),
    row("generate: num samples 0", generate, ["--num-samples", "0"], "--num-samples must be in 1..1024, got 0"),
    row("generate: num samples huge", generate, ["--num-samples", "100000000"],
        "--num-samples must be in 1..1024, got 100,000,000"),
    row("generate: seed beyond 64 bits", generate, ["--seed", str(2**64)],
        f"--seed must be in 0..{2**64 - 1} (64 bits), got {2**64}"),
    row("generate: negative seed", generate, ["--seed", "-1"], "--seed must be in 0.."),
    row("generate: show-probs < 0", generate, ["--show-probs", "-1"], "--show-probs must be in 0..1000000 (0 = off), got -1"),
    row("generate: checkpoint missing", generate, ["--checkpoint", "{tmp}/none.pt"],
        "checkpoint {tmp}/none.pt does not exist"),
    row("generate: checkpoint is a folder", generate, ["--checkpoint", "{run}"],
        "{run} is a folder; give a checkpoint file"),
    row("generate: hf: not a repo id", generate, ["--checkpoint", "hf:not a/repo id"],
        "hf:not a/repo id is not a Hugging Face repo id: write hf:<owner>/<name>"),
    row("init-from: hf: without a repo id", train, ["--init-from", "hf:", *FRESH], "hf: is not a Hugging Face repo id"),
    # prompts
    row("prompt: empty", generate, ["--prompt", ""], "the prompt is empty"),
    row("prompt: outside char vocab", generate, ["--prompt", "Zzz"],
        "characters 'Z', 'z' are not in this model's vocabulary"),
    row("prompt: longer than context", generate, ["--prompt", "hello " * 10],
        "the prompt is 60 tokens but the model's context is 16"),
    row("prompt: not UTF-8 (argv bytes)", generate, ["--prompt", "hel\udcff"], "the prompt is not valid UTF-8 text"),
    row("prompt: file missing", generate, ["--prompt-file", "{tmp}/none.txt"],
        "cannot read prompt file {tmp}/none.txt: No such file or directory"),
    row("prompt: file not UTF-8", generate, ["--prompt-file", "{latin1}"], "prompt file {latin1} is not UTF-8 text"),
    row("prompt: file is a folder", generate, ["--prompt-file", "{tmp}"],
        "cannot read prompt file {tmp}: Is a directory"),
    row("prompt: endless file", generate, ["--prompt-file", "/dev/zero"],
        "prompt file /dev/zero is over 1024 KiB"),
]


@pytest.fixture
def paths(tmp_path, trained_run, corpus) -> dict[str, str]:
    """A copy of a finished run, a good corpus and one file for each kind of bad input."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    files = {"empty": b"", "blank": b" \n\n\t", "binary": b"\x7fELF\x00\x01\x02", "latin1": b"caf\xe9 au lait\n",
             "bad_yaml": b"model: [\n", "list_yaml": b"- 1\n- 2\n", "a_file": b"not a folder",
             "zebra": b"Zebras only! " * 40, "twice_yaml": b"train:\n  max_iters: 5\ntrain:\n  lr: 0.1\n",
             "alias_bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
                 b"%c: &%c [" % (c, c) + b", ".join([b"*%c" % (c - 1)] * 9) + b"]\n" for c in range(98, 108))}
    found = {"tmp": str(tmp_path), "run": str(run), "corpus": str(corpus)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        found[name] = str(tmp_path / name)
    found["metrics_dir_run"] = str(tmp_path / "metrics_dir_run")
    shutil.copytree(trained_run, found["metrics_dir_run"])
    (tmp_path / "metrics_dir_run" / "metrics.jsonl").unlink()
    (tmp_path / "metrics_dir_run" / "metrics.jsonl").mkdir()
    with open(tmp_path / "sparse", "wb") as f:                    # 64 GB that take no disk space
        f.truncate(64 * 10**9)
    found["sparse"] = str(tmp_path / "sparse")
    for folder in ("no_txt", "read_only"):
        (tmp_path / folder).mkdir()
        found[folder] = str(tmp_path / folder)
    (tmp_path / "no_txt" / "notes.md").write_text("not a .txt file")
    os.chmod(tmp_path / "read_only", 0o555)
    return found


def expand(args: list[str], paths: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        out += tiny_overrides(Path(paths["run"]), Path(paths["corpus"])) if arg == TINY else [arg.format(**paths)]
    return out


def with_checkpoint(command, args: list[str], paths: dict[str, str]) -> list[str]:
    """generate.py rows read the run's best.pt unless they name another checkpoint."""
    if command is generate and "--checkpoint" not in args:
        return ["--checkpoint", f"{paths['run']}/best.pt", *args]
    return args


def snapshot(folder, names=None) -> dict[str, bytes]:
    """The bytes of every file in ``folder`` (or of ``names`` only)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())
            if p.is_file() and (names is None or p.name in names)}


@pytest.mark.parametrize("command, args, message", ROWS)
def test_bad_input_is_one_line_exit_2_and_overwrites_nothing(paths, capsys, command, args, message):
    args = with_checkpoint(command, expand(args, paths), paths)
    before = snapshot(paths["run"])
    code = command.main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message.format(**paths) in err
    assert snapshot(paths["run"]) == before


REAL = ("config: n_embd % n_head", "corpus: not UTF-8", "prompt: outside char vocab")


@pytest.mark.parametrize("command, args, message", [row for row in ROWS if row.id in REAL])
def test_real_processes_exit_2(paths, command, args, message):
    result = run_cli(f"{command.__name__}.py", *with_checkpoint(command, expand(args, paths), paths))
    assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message.format(**paths) in result.stderr


class RunsCode:
    """Unpickling this calls open(path, "w"): the file appears only if loading ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def edited(change):
    """A bad checkpoint made from a good one by ``change(ckpt)``."""
    def make(good: Path, bad: Path):
        ckpt = load_checkpoint(good)
        change(ckpt)
        torch.save(ckpt, bad)
    return make


def flipped_byte(good: Path, bad: Path):
    """A copy of ``good`` with one byte flipped in the middle of its largest tensor, as bit rot on a disk would:
    still a valid archive and pickle, so only the checksums tell."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    name_len, extra_len = struct.unpack("<HH", data[largest.header_offset + 26 : largest.header_offset + 30])
    start = largest.header_offset + 30 + name_len + extra_len               # after the record's local header
    data[start + largest.file_size // 2] ^= 0x10
    bad.write_bytes(data)


BAD_CHECKPOINTS = {
    "a flipped byte in a weight": (flipped_byte, "no longer matches the checksum written with it"),
    "truncated": (lambda good, bad: bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
                  "is truncated or not a PyTorch file"),
    "random bytes": (lambda good, bad: bad.write_bytes(os.urandom(4096)), "is truncated or not a PyTorch file"),
    "pickle that runs code": (lambda good, bad: torch.save({"format": "gpt-playground-checkpoint", "version": 1,
                                                            "model": RunsCode(str(bad) + ".pwned")}, bad),
                              "holds objects that are not plain data"),
    "another project's file": (lambda good, bad: torch.save({"state_dict": {"w": torch.zeros(2)}}, bad),
                               "is not a checkpoint of this project"),
    "missing field": (edited(lambda c: c.pop("rng")), "is damaged: missing or malformed rng"),
    "another architecture": (edited(lambda c: c["config"]["model"].update(n_layer=3)),
                             "does not fit the model its config describes"),
    "another tokenizer": (edited(lambda c: c.update(tokenizer=CharTokenizer.train("abc").to_dict())),
                          "tokenizer has 3 tokens but the model was trained with"),
    "a giant stored shape": (edited(lambda c: c["config"]["model"].update(n_layer=1024, n_embd=65536, n_head=64)),
                             "parameters) needs at least"),          # refused before anything is allocated
}


@pytest.mark.parametrize("how", ["generate --checkpoint", "train --resume", "train --init-from"])
@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
def test_bad_checkpoints_are_one_line_errors_naming_the_file(paths, capsys, kind, how):
    run = Path(paths["run"])
    bad = run / "last.pt" if how == "train --resume" else Path(paths["tmp"]) / "bad.pt"
    make, message = BAD_CHECKPOINTS[kind]
    make(run / "best.pt", bad)
    command, args = {"generate --checkpoint": (generate, ["--checkpoint", str(bad)]),
                     "train --resume": (train, ["--no-progress", "--resume", str(run)]),
                     "train --init-from": (train, ["--init-from", str(bad), *expand(FRESH, paths)])}[how]
    before = snapshot(run)
    code = command.main(args)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err and message in err, err
    assert snapshot(run) == before
    if kind == "pickle that runs code":
        assert not Path(f"{bad}.pwned").exists()                          # refused, never run...
        torch.load(bad, weights_only=False)
        assert Path(f"{bad}.pwned").exists()                              # ...though the payload is real


CHECKPOINTS = ("last.pt", "best.pt")


class FullDisk:
    """Files opened for writing on a disk with ``free`` bytes left: a write past that fails with ENOSPC (after
    writing what fits, as the kernel does)."""

    def __init__(self, free: int):
        self.free = free

    def open(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        return self.File(f, self) if "w" in mode or "a" in mode else f

    class File:
        def __init__(self, f, disk):
            self.f, self.disk = f, disk

        def write(self, data):
            fits = min(len(data), self.disk.free)
            self.f.write(data[:fits])
            self.disk.free -= fits
            if fits < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return fits

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()


def test_disk_full_while_saving_keeps_the_previous_checkpoints(paths, capsys, monkeypatch):
    run = Path(paths["run"])
    before = snapshot(run, CHECKPOINTS)
    monkeypatch.setattr(atomic_files, "open", FullDisk(free=16 * 1024).open, raising=False)   # atomic_write's files
    code = train.main(["--no-progress", "--resume", str(run), "--set", "train.max_iters=16"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"error: cannot write checkpoint {run}/" in err and "No space left on device" in err
    assert snapshot(run, CHECKPOINTS) == before
    assert not list(run.glob(f"{TMP_PREFIX}*"))
    monkeypatch.undo()                                                    # space freed: the run goes on
    assert train.main(["--no-progress", "--resume", str(run), "--set", "train.max_iters=16"]) == 0
    assert load_checkpoint(run / "last.pt")["iter"] == 16


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_FSIZE")
def test_a_real_write_error_in_a_real_process(paths):
    """The kernel refuses the checkpoint write (a file-size limit: EFBIG, like a full disk's ENOSPC)."""
    run = Path(paths["run"])
    before = snapshot(run, CHECKPOINTS)
    limit = 64 * 1024                                                   # the tiny checkpoints are about 340 KB
    start = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
             "sys.argv = sys.argv[1:]; runpy.run_path('train.py', run_name='__main__')")
    result = run_cli("-c", start, "train.py", "--no-progress", "--resume", run, "--set", "train.max_iters=16")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"error: cannot write checkpoint {run}/" in result.stderr and "File too large" in result.stderr
    assert snapshot(run, CHECKPOINTS) == before
    assert not list(run.glob(f"{TMP_PREFIX}*"))
