"""A run folder, a checkpoint, a user's file are never overwritten: train.py writes only into folders that are
empty or hold a run of this project, --overwrite clears the old checkpoints before the new run starts, and a run
on the user's own text gets its own folder."""
import io

import pytest
import torch
import yaml

from core.checkpoint import load_checkpoint
from core.config import load_config, parse_overrides
from errors import UserError
from tests.conftest import ROOT, run_cli, tiny_overrides
from training import toy
from training.run_dir import MARKER
from training.trainer import train

QUIET = dict(progress=False, log=lambda *_: None)


def files_of(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def plain_torch_file(data=None) -> bytes:
    """What another tool's ``torch.save`` writes: a real PyTorch archive, but not a checkpoint of ours."""
    buffer = io.BytesIO()
    torch.save(data or {"state_dict": {"w": torch.zeros(3)}, "epoch": 7}, buffer)
    return buffer.getvalue()


OTHER_TOOLS = {     # folders other tools write, with the file names our runs use
    "notes of the user's": {"notes.txt": b"x"},
    "a config.yaml of the user's": {"config.yaml": b"my own notes: keep\n"},
    "a photo and a last.pt": {"photo.jpg": b"\xff\xd8", "last.pt": b"not ours"},
    "another trainer's best.pt and config.yaml": {"best.pt": plain_torch_file(),
                                                  "config.yaml": b"lr: 0.1  # another trainer's settings\n"},
    "another trainer's last.pt and metrics.jsonl": {"last.pt": plain_torch_file(), "metrics.jsonl": b'{"step": 1}\n'},
    "a lone best.pt": {"best.pt": plain_torch_file({"weights": torch.ones(2)})},
    "our marker beside another trainer's best.pt": {MARKER: b"", "best.pt": plain_torch_file()},
    "our marker beside a last.pt that is not a checkpoint": {MARKER: b"", "last.pt": b"PK\x03\x04 cut"},
}


@pytest.mark.parametrize("contents", list(OTHER_TOOLS.values()), ids=list(OTHER_TOOLS))
def test_a_folder_of_the_users_is_refused_and_left_as_it_was(tmp_path, corpus, contents):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    cfg = load_config(None, tiny_overrides(folder, corpus))
    refused = (f"run directory {folder} is marked as a run of this project, but its" if MARKER in contents
               else f"run directory {folder} holds files that are not a run of this project")
    for overwrite in (False, True):
        with pytest.raises(UserError, match=refused):
            train(cfg, overwrite=overwrite, **QUIET)
        assert files_of(folder) == contents and sorted(p.name for p in folder.iterdir()) == sorted(contents)


def test_another_trainers_folder_is_refused_by_the_real_command(tmp_path, corpus):
    folder = tmp_path / "mine"
    folder.mkdir()
    contents = OTHER_TOOLS["another trainer's best.pt and config.yaml"]
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    for flags in ([], ["--overwrite"]):
        result = run_cli("train.py", "--no-progress", *flags, "--set", *tiny_overrides(folder, corpus))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "holds files that are not a run of this project (best.pt, config.yaml" in result.stderr
        assert files_of(folder) == contents and sorted(p.name for p in folder.iterdir()) == sorted(contents)


def test_a_run_is_marked_and_stays_ours(tmp_path, corpus):
    cfg = load_config(None, tiny_overrides(tmp_path / "run", corpus))
    train(cfg, **QUIET)
    assert (tmp_path / "run" / MARKER).is_file()
    train(cfg, overwrite=True, **QUIET)                                   # our own run: --overwrite may replace it
    (tmp_path / "run" / MARKER).unlink()                                  # a run made before the marker existed:
    before = files_of(tmp_path / "run")                                   # refused, with the way to mark it
    with pytest.raises(UserError, match=f"mark it: touch {tmp_path / 'run' / MARKER}"):
        train(cfg, overwrite=True, **QUIET)
    assert files_of(tmp_path / "run") == before
    (tmp_path / "run" / MARKER).touch()
    train(cfg, overwrite=True, **QUIET)


def test_overwrite_clears_the_old_checkpoints_before_the_new_run_starts(tmp_path, corpus):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    assert (run / "best.pt").is_file()
    other_shape = tiny_overrides(run, corpus, **{"model.n_layer": 3})
    killed = run_cli("train.py", "--no-progress", "--overwrite", "--set", *other_shape,
                     env={"GPT_PLAYGROUND_KILL_AT": "step:1"})                  # killed after the new run's 1st step
    assert killed.returncode != 0
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists()    # no stale best.pt of the old shape
    generate = run_cli("generate.py", "--checkpoint", run / "best.pt")
    assert generate.returncode == 2 and "does not exist" in generate.stderr


def test_a_run_on_the_users_text_gets_its_own_folder(tmp_path, corpus):
    (tmp_path / "runs" / "toy").mkdir(parents=True)
    (tmp_path / "runs" / "toy" / "keep.txt").write_text("the toy run's neighbour")
    small = [f"{k}={v}" for k, v in {"model.block_size": 16, "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16,
                                       "train.max_iters": 2, "train.eval_interval": 2, "train.eval_iters": 1,
                                       "train.device": "cpu", "train.dtype": "float32"}.items()]
    result = run_cli(ROOT / "train.py", "--no-progress", "--data", corpus, "--set", *small, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"run directory: runs/{corpus.stem}" in result.stdout
    assert (tmp_path / "runs" / corpus.stem / "best.pt").is_file()
    assert [p.name for p in (tmp_path / "runs" / "toy").iterdir()] == ["keep.txt"]


def test_resume_takes_the_folder_or_its_last_pt(tmp_path, corpus):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    result = train(resume=run / "last.pt", overrides=["train.max_iters=14"], **QUIET)
    assert result.run_dir == run and result.iter == 14
    with pytest.raises(UserError, match="--resume takes a run folder"):
        train(resume=run / "best.pt", **QUIET)


def test_the_toy_model_is_not_trained_over_an_unfinished_run(tmp_path, corpus, monkeypatch):
    """learn.py and play.py train the toy model when its best.pt is missing; an interrupted run there (last.pt
    only) is the user's to resume, not to be replaced."""
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    (run / "best.pt").unlink()
    before = files_of(run)
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(parse_overrides(tiny_overrides(run, corpus))), encoding="utf-8")
    monkeypatch.setitem(toy.TOY_CONFIGS, "word", config)
    with pytest.raises(UserError, match=f"run directory {run} already holds a checkpoint; continue it with --resume"):
        toy.toy_checkpoint(log=lambda *_: None)
    assert files_of(run) == before


def test_an_edited_config_yaml_is_not_silently_undone_by_resume(tmp_path, corpus):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    assert train(resume=run, overrides=["train.max_iters=13"], **QUIET).iter == 13   # written by train.py: fine
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("max_iters: 13", "max_iters: 20"))
    with pytest.raises(UserError, match=r"config.yaml was edited \(train.max_iters=20\).*--set train.max_iters=20"):
        train(resume=run, **QUIET)
    assert train(resume=run, overrides=["train.max_iters=20"], **QUIET).iter == 20   # asked for with --set


def test_resume_refuses_another_out_dir(tmp_path, corpus):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    with pytest.raises(UserError, match="train.out_dir cannot change when resuming"):
        train(resume=run, overrides=[f"train.out_dir={tmp_path / 'elsewhere'}"], **QUIET)
    assert not (tmp_path / "elsewhere").exists()


def test_fine_tuning_records_the_tokenizer_it_keeps(tmp_path, corpus):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(run, corpus)), **QUIET)
    tuned = train(load_config(None, tiny_overrides(tmp_path / "tuned", corpus, **{"data.tokenizer": "bpe"})),
                  init_from=run / "best.pt", **QUIET)
    saved = load_checkpoint(tuned.run_dir / "best.pt")
    assert saved["tokenizer"]["kind"] == "char" and saved["config"]["data"]["tokenizer"] == "char"
    assert "tokenizer: char" in (tuned.run_dir / "config.yaml").read_text()
