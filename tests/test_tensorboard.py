"""``train.tensorboard: true``: the run folder also holds TensorBoard event files whose scalars are the records of
``metrics.jsonl`` (read back with TensorBoard's own event reader), also after a crash and a resume; without the
package, a one-line error before any work."""
import sys

import pytest

import train as train_cli
from training import loop
from training.run_dir import read_metrics
from training.tensorboard import TAGS
from training.trainer import train

QUIET = {"progress": False, "log": lambda *_: None}


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every tag's (step, value) pairs, as TensorBoard shows them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})         # 0: keep every event
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def from_metrics(run_dir) -> dict[str, list[tuple[int, float]]]:
    records = read_metrics(run_dir / "metrics.jsonl")
    return {tag: [(r["iter"], r[key]) for r in records if key in r] for key, tag in TAGS.items()
            if any(key in r for r in records)}


class Crash(Exception):
    """Stands in for a kill: nothing after it is saved."""


def test_the_event_files_hold_the_metrics_also_across_a_crash_and_a_resume(tiny_cfg, monkeypatch):
    """Steps 5 and 6 are logged, then the process dies before the checkpoint of step 8: the resumed run takes them
    again from last.pt (step 4), and TensorBoard, like metrics.jsonl, shows each step once, with the new values."""
    pytest.importorskip("tensorboard")
    real_kill_point, steps = loop.kill_point, []

    def crash_at_step_6(name):
        steps.append(name)
        if steps.count("step") == 6:
            raise Crash
        real_kill_point(name)

    monkeypatch.setattr(loop, "kill_point", crash_at_step_6)
    cfg = tiny_cfg(**{"train.tensorboard": True, "train.grad_clip": 0.5})
    with pytest.raises(Crash):
        train(cfg, **QUIET)
    monkeypatch.undo()
    run_dir = train(resume=cfg.train.out_dir, **QUIET).run_dir
    expected = from_metrics(run_dir)
    assert set(expected) == set(TAGS.values()) - {"loss/val_whole_split"}
    assert [step for step, _ in expected["loss/train"]] == list(range(1, 13))
    assert [step for step, _ in expected["loss/val"]] == [4, 8, 12]
    got = scalars(run_dir)
    assert set(got) == set(expected)
    for tag, pairs in expected.items():            # TensorBoard keeps float32: equal to 7 significant digits
        assert [s for s, _ in got[tag]] == [s for s, _ in pairs], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in pairs], rel=1e-6), tag
    norms = [v for _, v in expected["optimizer/grad_norm"]]
    assert all(v > 0 for v in norms) and max(norms) > 0.5            # measured before clipping to 0.5


def test_without_the_package_a_one_line_error_before_any_work(tiny_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)            # import tensorboard → ImportError
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    cfg = tiny_cfg()
    code = train_cli.main(["--set", *[f"{k}={v}" for k, v in
                                      [("train.tensorboard", "true"), ("train.out_dir", tmp_path / "tb"),
                                       ("data.path", cfg.data.path), ("train.device", "cpu")]]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install tensorboard" in err, err
    assert not (tmp_path / "tb").exists()                             # nothing started


def test_overwrite_removes_the_old_runs_event_files(tiny_cfg):
    pytest.importorskip("tensorboard")
    first = train(tiny_cfg(**{"train.tensorboard": True}), **QUIET).run_dir
    old = set(first.glob("events.out.tfevents.*"))
    again = train(tiny_cfg(**{"train.tensorboard": True, "train.max_iters": 4}), overwrite=True, **QUIET).run_dir
    assert old and not old & set(again.glob("events.out.tfevents.*"))
    assert [s for s, _ in scalars(again)["loss/train"]] == [1, 2, 3, 4]
