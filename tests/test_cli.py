"""The real command lines, as a user runs them: train → checkpoint → generate (bad input: test_bad_input.py)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint
from data.toy_facts import toy_facts
from tests.conftest import ROOT, run_cli, tiny_overrides
from training.run_dir import read_metrics


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    corpus = tmp / "corpus.txt"
    corpus.write_text("This animal barks. This animal is a dog.\n2+2=4\n" * 30)
    result = run_cli("train.py", "--no-progress", "--set", *tiny_overrides(tmp / "run", corpus))
    assert result.returncode == 0, result.stderr
    assert "done: step 12" in result.stdout
    return tmp / "run"


def test_generate_streams_the_prompt_and_a_continuation(cli_run):
    result = run_cli("generate.py", "--checkpoint", cli_run / "best.pt", "--prompt", "This animal",
                     "--max-new-tokens", "15", "--show-probs", "3")
    assert result.returncode == 0, result.stderr
    assert "next-token probabilities at temperature" in result.stdout
    assert "\n\nThis animal" in result.stdout                 # the probabilities, a blank line, the text


def test_same_seed_same_text_and_jsonl_output(cli_run):
    args = ["generate.py", "--checkpoint", cli_run / "best.pt", "--prompt", "2+", "--temperature", "1.5",
            "--max-new-tokens", "20", "--num-samples", "3", "--format", "jsonl", "--show-probs"]
    first, second = run_cli(*args, "--seed", "5"), run_cli(*args, "--seed", "5")
    records = [json.loads(line) for line in first.stdout.splitlines()]
    assert first.stdout == second.stdout and len(records) == 3
    assert abs(sum(p["prob"] for p in records[0]["next_token_probs"])) <= 1.0 + 1e-6
    assert run_cli(*args, "--seed", "6").stdout != first.stdout


def test_kv_cache_and_recompute_agree_through_the_cli(cli_run):
    args = ["generate.py", "--checkpoint", cli_run / "best.pt", "--prompt", "This", "--temperature", "0",
            "--max-new-tokens", "40"]
    assert run_cli(*args).stdout == run_cli(*args, "--no-kv-cache").stdout


def wait_for(path, lines: int, proc: subprocess.Popen, seconds: float = 120) -> None:
    """Until ``path`` holds ``lines`` lines, written by ``proc``, which must still be running."""
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().count("\n") >= lines):
        assert proc.poll() is None, f"exited with {proc.returncode} first: " + proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} still has fewer than {lines} lines after {seconds} s"
        time.sleep(0.05)


def test_ctrl_c_saves_and_resume_finishes(tmp_path, corpus):
    overrides = tiny_overrides(tmp_path / "run", corpus, **{"train.max_iters": 100000, "train.eval_interval": 50000})
    proc = subprocess.Popen([sys.executable, "train.py", "--no-progress", "--set", *overrides], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "run" / "metrics.jsonl", 3, proc)  # three steps logged: the run is under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: saved step" in out + err
    result = run_cli("train.py", "--no-progress", "--resume", tmp_path / "run", "--set", "train.max_iters=60")
    assert result.returncode == 0, result.stderr
    assert "done: step 60" in result.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_long_evaluation_is_quick_and_keeps_last_pt(tmp_path, corpus, sig):
    """An evaluation of 10⁶ batches would take many minutes: the stop lands between two of its batches, last.pt
    is saved with that evaluation marked pending, and the resumed run does it first, then finishes as usual."""
    run = tmp_path / "run"
    train_args = ["--no-progress", "--set", *tiny_overrides(run, corpus, **{"train.max_iters": 8,
                                                                            "train.eval_interval": 4})]
    assert run_cli("train.py", *train_args).returncode == 0                      # last.pt at step 8
    before = (run / "last.pt").read_bytes()
    long_eval = ["train.max_iters=16", "train.eval_iters=1000000"]
    proc = subprocess.Popen([sys.executable, "train.py", "--no-progress", "--resume", run, "--set", *long_eval],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(run / "metrics.jsonl", 8 + 2 + 4, proc)       # 8 steps and 2 evaluations, then 4 more steps
    # step 12's line is written: the evaluation of step 12 is next or under way, and either way the stop lands in
    # it, since the evaluation asks for a stop before each of its 10⁶ batches
    stopped = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert time.time() - stopped < 30, "the stop waited for the evaluation"   # which takes many minutes
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted during the evaluation of step 12: saved step 12" in out + err
    assert (run / "last.pt").read_bytes() != before and load_checkpoint(run / "last.pt")["eval_pending"]
    done = run_cli("train.py", "--no-progress", "--resume", run, "--set", "train.max_iters=16", "train.eval_iters=2")
    assert done.returncode == 0 and "done: step 16" in done.stdout, done.stderr
    assert [m["iter"] for m in read_metrics(run / "metrics.jsonl") if "val_loss" in m] == [4, 8, 12, 16]


def test_ctrl_c_in_the_toy_evaluation_is_exit_130_without_a_traceback(play_checkpoint):
    """The Ctrl-C lands inside the facts' generation (the process signals itself at its third token: the batched
    evaluation is over in a moment, too soon for a signal sent from outside to be sure of landing in it)."""
    proc = subprocess.run([sys.executable, "toy_eval.py", "--checkpoint", play_checkpoint], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GPT_PLAYGROUND_KILL_AT": "greedy token:3:SIGINT"})
    assert proc.stderr.startswith(f"checking {len(toy_facts())} facts by greedy generation"), proc.stderr
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""                                 # stopped before the table: inside the generation


def test_a_ctrl_c_while_a_generation_cut_short_closes_reaches_the_caller(play_checkpoint, monkeypatch):
    """greedy_text stops its generation as soon as it has enough text. A Ctrl-C that lands while that generation
    closes must reach the command (exit 130); closed by the garbage collector, it was printed as "Exception
    ignored" and toy_eval.py went on to exit 0."""
    import inference

    def generation_interrupted_while_closing(model, idx, *args, **kwargs):
        try:
            while True:
                yield torch.zeros(idx.size(0), 1, dtype=torch.long)                  # (B, 1) token 0
        finally:
            raise KeyboardInterrupt

    loaded = inference.load_for_inference(play_checkpoint)
    monkeypatch.setattr(inference, "generate", generation_interrupted_while_closing)
    with pytest.raises(KeyboardInterrupt):
        inference.greedy_text(loaded, "\n2+2=", min_chars=3)


def test_any_console_encoding_gets_its_output_without_a_traceback(cli_run, tmp_path, corpus):
    """A console (or a redirect on Windows) in cp1252 cannot show '→' or '█': they are replaced, never a crash."""
    def run_cp1252(*args):
        return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, encoding="cp1252",
                              env={**os.environ, "PYTHONIOENCODING": "cp1252"}, timeout=120)

    trained = run_cp1252("train.py", "--set", *tiny_overrides(tmp_path / "run", corpus))     # progress bar on
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr
    assert "characters ? " in trained.stdout and "done: step 12" in trained.stdout
    sampled = run_cp1252("generate.py", "--checkpoint", cli_run / "best.pt", "--prompt", "This", "--show-probs", "3",
                         "--max-new-tokens", "5")
    assert sampled.returncode == 0 and sampled.stderr == "", sampled.stderr
    assert "%  ?" in sampled.stdout                                                   # the bars, replaced


def test_a_reader_that_leaves_ends_generation_quietly(cli_run):
    """``generate.py | head -1``: exit 0, nothing on stderr, however much was still to come."""
    proc = subprocess.Popen([sys.executable, "generate.py", "--checkpoint", cli_run / "best.pt", "--prompt", "This",
                             "--max-new-tokens", "1000000", "--show-probs", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("next-token probabilities")
    proc.stdout.close()                                                   # as head does after its line
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == ""


def test_a_reader_that_leaves_stops_training_with_the_reported_step_saved(tmp_path, corpus):
    """``train.py | head``: each step's line comes after its checkpoint is written; when the reader goes, the run
    stops as Ctrl-C would (it saves, --resume continues) and says nothing more."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "train.py", "--no-progress", "--set",
                             *tiny_overrides(run, corpus, **{"train.max_iters": 100000, "train.eval_interval": 1})],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("step "):                                  # the first step reported (stdout is a
        line = proc.stdout.readline()                                    # pipe: it comes with a full buffer)
        assert line, proc.communicate()[1]
    reported = int(line.split()[1].rstrip(":"))
    proc.stdout.close()
    assert proc.wait(timeout=120) == 130
    assert proc.stderr.read() == ""
    assert load_checkpoint(run / "last.pt")["iter"] > reported and (run / "best.pt").is_file()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_output_to_a_full_device_is_a_one_line_error(cli_run):
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "generate.py", "--checkpoint", cli_run / "best.pt", "--prompt",
                                 "This", "--max-new-tokens", "5"], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: cannot write the output to stdout: No space left on device\n"
