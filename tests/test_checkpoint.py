import os

import pytest
import torch

from core.checkpoint import checkpoint_state, load_checkpoint, model_from_checkpoint, save_checkpoint
from data.tokenization import CharTokenizer
from errors import UserError
from model import GPT


def saved_model(tmp_path, tiny_cfg):
    cfg = tiny_cfg()
    tok = CharTokenizer.train("abcdefgh ")
    model = GPT(cfg.model, tok.vocab_size)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, checkpoint_state(model, None, cfg, tok, 3, 1.5, torch.Generator()))
    return model, path


def test_round_trip_gives_identical_logits(tmp_path, tiny_cfg):
    model, path = saved_model(tmp_path, tiny_cfg)
    again, tok, cfg = model_from_checkpoint(load_checkpoint(path))
    idx = torch.tensor([tok.encode("abc hag")])
    assert torch.equal(model.eval()(idx)[0], again.eval()(idx)[0])
    assert cfg == tiny_cfg() and load_checkpoint(path)["iter"] == 3


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-marker",))


def test_pickled_code_is_refused_and_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gpt-playground-checkpoint", "model": RunsCode()}, path)
    os.chdir(tmp_path)
    with pytest.raises(UserError, match="not plain data"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned-marker").exists()


def test_truncated_random_and_foreign_files(tmp_path, tiny_cfg):
    _, path = saved_model(tmp_path, tiny_cfg)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    noise = tmp_path / "noise.pt"
    noise.write_bytes(os.urandom(4096))
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    for bad, message in ((truncated, "truncated"), (noise, "truncated or not a PyTorch file"),
                         (foreign, "not a checkpoint of this project"), (tmp_path / "missing.pt", "does not exist")):
        with pytest.raises(UserError, match=message) as err:
            load_checkpoint(bad)
        assert str(bad) in str(err.value)


def test_weights_that_do_not_fit_the_config(tmp_path, tiny_cfg):
    _, path = saved_model(tmp_path, tiny_cfg)
    ckpt = load_checkpoint(path)
    ckpt["config"]["model"]["n_layer"] = 3
    with pytest.raises(UserError, match="does not fit the model"):
        model_from_checkpoint(ckpt, path)
