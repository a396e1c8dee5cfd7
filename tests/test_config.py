import typing
from pathlib import Path

import pytest

from core.config import config_to_dict, load_config, parse_yaml
from errors import UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    """Every value a shipped YAML file sets is the value its config holds (none dropped or turned into another)."""
    written = parse_yaml(path.read_text(encoding="utf-8"))                 # read as load_config reads it
    loaded = config_to_dict(load_config(path))
    assert written and set(written) <= set(loaded)
    for section, values in written.items():
        for key, value in values.items():
            assert loaded[section][key] == value, (section, key, value, loaded[section][key])


def test_overrides_are_typed():
    cfg = load_config(ROOT / "configs" / "toy.yaml", ["train.max_iters=7", "train.lr=3e-4", "sample.top_k=5",
                                                      "model.positional=none"])
    assert cfg.train.max_iters == 7 and cfg.train.lr == 3e-4 and cfg.sample.top_k == 5
    assert cfg.model.positional == "none"


@pytest.mark.parametrize("yaml_text, message", [
    ("model:\n  n_layers: 4\n", "unknown key model.n_layers"),
    ("modle:\n  n_layer: 4\n", "unknown section 'modle'"),
    ("model:\n  n_embd: big\n", "model.n_embd must be int"),
    ("train:\n  compile: 1\n", "train.compile must be bool"),
    ("model:\n  n_embd: 130\n  n_head: 4\n", "divisible by model.n_head"),
    ("model:\n  n_layer: -1\n", "model.n_layer must be > 0"),
    ("train:\n  lr: 0\n", "train.lr must be > 0"),
    ("data:\n  tokenizer: words\n", "tokenizer must be 'word', 'char', 'bpe' or 'tiktoken:<name>'"),
    ("data:\n  val_fraction: 1.5\n", "data.val_fraction must be in (0, 1)"),
    ("model:\n  positional: alibi\n", "model.positional must be one of sinusoidal, learned, rope, none"),
    ("model:\n  positional: rope\n  n_embd: 36\n  n_head: 4\n", "model.n_embd / model.n_head must be even with rope"),
    ("model:\n  activation: relu\n", "model.activation must be one of gelu, gelu_tanh"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("model: [\n", "not valid YAML"),
])
def test_bad_configs_give_one_clear_message(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(UserError, match=None) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_all_problems_are_reported_together(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  n_layerz: 1\ntrain:\n  batch_size: x\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    assert "model.n_layerz" in str(err.value) and "train.batch_size" in str(err.value)


@pytest.mark.parametrize("override", ["train.nope=1", "trainmax_iters=5", "train.max_iters=five"])
def test_bad_overrides(override):
    with pytest.raises(UserError):
        load_config(None, [override])


@pytest.mark.parametrize("hint", [typing.Optional[float], float | None])
def test_an_optional_field_takes_its_type_or_null_however_it_is_written(hint):
    from core.config import coerce_value

    problems = []
    assert coerce_value(2, hint, "train.x", problems) == 2.0 and coerce_value(None, hint, "train.x", problems) is None
    assert coerce_value("3e-4", hint, "train.x", problems) == 3e-4 and problems == []
    assert coerce_value("fast", hint, "train.x", problems) is None
    assert problems == ["train.x must be float or null, got 'fast'"]


def test_the_config_reference_names_every_key_with_its_default():
    """docs/config.md and the dataclasses cannot drift apart: every key is a row, every row a key, and each default
    reads as the dataclass's."""
    import dataclasses
    import re

    from core.config import Config
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    table = text[text.index("## Keys"):].split("\n## ")[0]
    rows = {}
    for keys, default in re.findall(r"^\| ((?:`[a-z_]+\.[a-z_0-9]+`(?:, )?)+) \|\s*([^|]*?)\s*\|", table, re.M):
        names = re.findall(r"`([^`]+)`", keys)
        values = [v.strip() for v in default.split(",")] if len(names) > 1 else [default.strip()]
        rows.update(zip(names, values))

    def shown(value) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value)

    cfg = Config()
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(getattr(cfg, section.name)):
            key, value = f"{section.name}.{f.name}", getattr(getattr(cfg, section.name), f.name)
            assert key in rows, f"docs/config.md has no row for {key}"
            written = rows.pop(key)
            if isinstance(value, float):
                assert float(written) == value, (key, written, value)
            else:
                assert written == shown(value), (key, written, value)
    assert not rows, f"README's config table names keys the dataclasses do not have: {sorted(rows)}"
