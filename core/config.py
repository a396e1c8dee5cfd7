"""The run's configuration: nested dataclasses filled from YAML, checked once at load.

Every problem (unknown key, wrong type, impossible shape) is collected into one message, so a user fixes their
file in one go. Overrides from the command line name an existing key (``--set train.max_iters=200``) and are parsed
as YAML scalars, then checked like the file's values.
"""
import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from data.config import DataConfig
from data.tokenization import check_tokenizer_spec
from errors import UserError
from model.config import ACTIVATIONS, POSITIONALS, ModelConfig
from model.sampling import MAX_TOP_K, MAX_TOP_P, MIN_TOP_K, TOP_P_ABOVE


@dataclass
class TrainConfig:
    out_dir: str = "runs/toy"           # run directory: checkpoints, metrics.jsonl, config.yaml
    seed: int = 1337                    # one seed for init, batches and dropout: same seed, same run
    device: str = "auto"                # "auto" (cuda > mps > cpu), "cpu", "cuda", "mps"
    dtype: str = "auto"                 # "auto", "float32", "bfloat16" (autocast: matmuls in bf16)
    compile: bool = False               # torch.compile the model (falls back to eager if it cannot)
    compile_scope: str = "model"        # "model": one graph for the whole step; "blocks": each block on its own
                                        # (one compilation serves every block: a shorter start-up)
    cuda_graphs: bool = False           # on a GPU: replay each step as CUDA graphs (with compile: torch.compile's
                                        # reduce-overhead mode; without: the eager step recorded once, no compiling)
    threads: int = 0                    # CPU threads for PyTorch's kernels (0 = PyTorch's default: one per core)
    batch_size: int = 12                # sequences per micro-batch
    grad_accum: int = 1                 # micro-batches per optimizer step
    max_iters: int = 2000               # optimizer steps
    lr: float = 1.0e-3                  # peak learning rate
    min_lr: float = 1.0e-4              # learning rate at the end of the cosine decay
    warmup_iters: int = 100             # linear warm-up steps
    weight_decay: float = 0.1           # AdamW decay on weight matrices only
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0              # clip the global gradient norm to this (0 = off)
    fused_optimizer: bool = True        # fused AdamW kernel (one pass over all parameters)
    eval_interval: int = 250            # evaluate and checkpoint every this many steps (and at the end)
    eval_iters: int = 20                # batches per split in an evaluation
    log_interval: int = 10              # write a metrics line every this many steps
    target_val_loss: typing.Optional[float] = None  # stop once the whole val split's loss is <= this, checked at
                                        # evaluations whose sample comes within two standard errors of it
                                        # (time-to-loss benchmarks); null = run all max_iters steps


@dataclass
class SampleConfig:
    prompt: str = "This animal barks. This animal is a"  # default prompt for generate.py
    max_new_tokens: int = 100
    temperature: float = 0.8            # 0 = greedy
    top_k: typing.Optional[int] = None
    top_p: typing.Optional[float] = None
    seed: int = 1337


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}
CHOICES = {("model", "positional"): POSITIONALS,
           ("model", "activation"): ACTIVATIONS,
           ("train", "device"): ("auto", "cpu", "cuda", "mps"),
           ("train", "dtype"): ("auto", "float32", "bfloat16"),
           ("train", "compile_scope"): ("model", "blocks")}


def coerce_value(value, hint, where: str, problems: list[str]):
    """value checked against the field's type (int → float is allowed, and so is "3e-4"; bool is not an int).

    Floats must be finite: YAML reads ``.nan`` and ``.inf`` as numbers, and every comparison with NaN is false, so a
    NaN learning rate would pass every range check below and only show up as a NaN loss."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)      # Optional[X] and X | None alike
    allowed = typing.get_args(hint) if union else (hint,)
    if value is None and type(None) in allowed:
        return None
    for t in allowed:
        number = None
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        if t is float and isinstance(value, str):
            try:                    # YAML 1.1 reads "3e-4" (no dot) as a string
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                problems.append(f"{where} must be a finite number, got {value!r}")
            return number
        if t is not type(None) and type(value) is t:
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    problems.append(f"{where} must be {names}, got {value!r}")
    return None


MAX_SEED = 2**64 - 1
MAX_NEW_TOKENS = 10**6


def upper_bounds(cfg: Config) -> dict[str, tuple]:
    """The largest value each count may take: far beyond what a 2-core CPU or one GPU trains, small enough that a
    typo (an extra zero, a seed pasted as a size) is named instead of crashing the allocator or the thread pool.
    Whether a shape fits the memory at hand is checked later, from its estimate (``core.memory``)."""
    m, d, t, s = cfg.model, cfg.data, cfg.train, cfg.sample
    return {"model.block_size": (m.block_size, 2**20), "model.n_layer": (m.n_layer, 1024),
            "model.n_head": (m.n_head, 1024), "model.n_embd": (m.n_embd, 2**16), "model.ffn_mult": (m.ffn_mult, 64),
            "data.bpe_vocab_size": (d.bpe_vocab_size, 2**20), "data.word_vocab_size": (d.word_vocab_size, 2**20),
            "train.threads": (t.threads, 1024),
            "train.batch_size": (t.batch_size, 2**20), "train.grad_accum": (t.grad_accum, 2**20),
            "train.max_iters": (t.max_iters, 10**9), "train.warmup_iters": (t.warmup_iters, 10**9),
            "train.eval_interval": (t.eval_interval, 10**9), "train.eval_iters": (t.eval_iters, 10**6),
            "train.log_interval": (t.log_interval, 10**9),
            "sample.max_new_tokens": (s.max_new_tokens, MAX_NEW_TOKENS), "sample.top_k": (s.top_k or 0, MAX_TOP_K)}


def _check_values(cfg: Config, problems: list[str]) -> None:
    m, d, t, s = cfg.model, cfg.data, cfg.train, cfg.sample
    positive = {"model.block_size": m.block_size, "model.n_layer": m.n_layer, "model.n_head": m.n_head,
                "model.n_embd": m.n_embd, "model.ffn_mult": m.ffn_mult, "data.bpe_vocab_size": d.bpe_vocab_size,
                "train.batch_size": t.batch_size, "train.grad_accum": t.grad_accum, "train.max_iters": t.max_iters,
                "train.lr": t.lr, "train.eval_interval": t.eval_interval, "train.eval_iters": t.eval_iters,
                "train.log_interval": t.log_interval}
    problems += [f"{k} must be > 0, got {v}" for k, v in positive.items() if v <= 0]
    non_negative = {"data.word_vocab_size": d.word_vocab_size, "train.threads": t.threads, "train.min_lr": t.min_lr,
                    "train.warmup_iters": t.warmup_iters, "train.weight_decay": t.weight_decay, "train.grad_clip": t.grad_clip,
                    "sample.max_new_tokens": s.max_new_tokens, "sample.temperature": s.temperature}
    problems += [f"{k} must be >= 0, got {v}" for k, v in non_negative.items() if v < 0]
    problems += [f"{k} must be <= {hi:,}, got {v:,}" for k, (v, hi) in upper_bounds(cfg).items() if v > hi]
    for key, seed in {"train.seed": t.seed, "sample.seed": s.seed}.items():
        if not 0 <= seed <= MAX_SEED:
            problems.append(f"{key} must be in 0..{MAX_SEED} (64 bits), got {seed}")
    if m.n_embd > 0 and m.n_head > 0 and m.n_embd % m.n_head:
        problems.append(f"model.n_embd ({m.n_embd}) must be divisible by model.n_head ({m.n_head})")
    if m.positional == "sinusoidal" and m.n_embd % 2:
        problems.append(f"model.n_embd must be even (sin/cos pairs of the positional encoding), got {m.n_embd}")
    if m.positional == "rope" and m.n_embd > 0 and m.n_head > 0 and not m.n_embd % m.n_head and m.head_size % 2:
        problems.append(f"model.n_embd / model.n_head must be even with rope (it turns pairs of a head's "
                        f"dimensions), got {m.head_size}")
    if not 0.0 <= m.dropout < 1.0:
        problems.append(f"model.dropout must be in [0, 1), got {m.dropout}")
    empty = {"data.path": d.path, "data.cache_dir": d.cache_dir, "train.out_dir": t.out_dir}
    problems += [f"{k} must not be empty (it would mean the current folder)" for k, v in empty.items() if not v.strip()]
    if not 0.0 < d.val_fraction < 1.0:
        problems.append(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")
    if problem := check_tokenizer_spec(d.tokenizer):
        problems.append(f"data.{problem}")
    if d.tokenizer == "bpe" and 0 < d.bpe_vocab_size < 256:
        problems.append(f"data.bpe_vocab_size must be >= 256 (the byte alphabet), got {d.bpe_vocab_size}")
    if d.tokenizer == "word" and d.word_vocab_size == 1:
        problems.append("data.word_vocab_size must be 0 (every word) or >= 2 (<unk> and one word), got 1")
    if t.min_lr > t.lr:
        problems.append(f"train.min_lr ({t.min_lr}) must not exceed train.lr ({t.lr})")
    if t.target_val_loss is not None and t.target_val_loss <= 0:
        problems.append(f"train.target_val_loss must be > 0 or null, got {t.target_val_loss}")
    if s.top_k is not None and s.top_k < MIN_TOP_K:
        problems.append(f"sample.top_k must be >= {MIN_TOP_K}, got {s.top_k}")
    if s.top_p is not None and not TOP_P_ABOVE < s.top_p <= MAX_TOP_P:
        problems.append(f"sample.top_p must be in ({TOP_P_ABOVE:g}, {MAX_TOP_P:g}], got {s.top_p}")
    for (section, key), choices in CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            problems.append(f"{section}.{key} must be one of {', '.join(choices)}, got {value!r}")


def config_from_dict(raw, source: str = "config") -> Config:
    """A validated Config from nested plain data (a YAML file's content or a checkpoint's ``asdict``)."""
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(raw).__name__}")
    sections = {}
    for name, values in raw.items():
        if name not in SECTIONS:
            problems.append(f"unknown section {name!r} (known: {', '.join(SECTIONS)})")
        elif values is not None and not isinstance(values, dict):
            problems.append(f"section {name!r} must be a mapping of keys, got {values!r}")
    for name, section_cls in SECTIONS.items():
        hints = typing.get_type_hints(section_cls)
        values = raw.get(name) or {}
        kwargs = {}
        if isinstance(values, dict):
            for key, value in values.items():
                if key not in hints:
                    problems.append(f"unknown key {name}.{key} (known: {', '.join(hints)})")
                else:
                    kwargs[key] = coerce_value(value, hints[key], f"{name}.{key}", problems)
        sections[name] = section_cls(**kwargs)
    cfg = Config(**sections)
    if not problems:
        _check_values(cfg, problems)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    return cfg


def parse_overrides(items: list[str]) -> dict:
    """["train.max_iters=200", "model.n_layer=2"] → {"train": {"max_iters": 200}, "model": {"n_layer": 2}}."""
    nested: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UserError(f"override {item!r} must look like section.key=value, e.g. train.max_iters=200")
        try:
            parsed = parse_yaml(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        nested.setdefault(section, {})[name] = parsed
    return nested


def merge(base: dict, overrides: dict) -> dict:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in overrides.items():
        target = merged.setdefault(section, {})
        if isinstance(target, dict):
            target.update(values)
        else:
            merged[section] = values
    return merged


MAX_CONFIG_BYTES = 1 << 20


class ConfigLoader(yaml.SafeLoader):
    """``yaml.safe_load`` for configs, stricter in two ways. Aliases (``*name``) are refused: a config never needs
    them, and aliases of aliases expand exponentially (ten short lines can ask for gigabytes). A key given twice in
    one mapping (two ``train:`` sections, say) is an error, not a silent "the last one wins"."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a config",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str):
    return yaml.load(text, Loader=ConfigLoader)


def read_config_text(path: str | Path) -> str:
    """The file's text, read no further than ``MAX_CONFIG_BYTES`` (``--config /dev/zero`` would never end)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except OSError as e:                            # a folder, no permission, an I/O error
        raise UserError(f"cannot read config file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KiB; a config is a few dozen lines")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not valid YAML: not UTF-8 text (bad byte at offset {e.start})") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Config from a YAML file (None: the defaults) with ``section.key=value`` overrides applied on top."""
    raw: dict = {}
    source = "config"
    if path is not None:
        source = str(path)
        text = read_config_text(path)
        try:
            raw = parse_yaml(text)
        except yaml.YAMLError as e:
            raise UserError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if overrides:
        if raw is not None and not isinstance(raw, dict):
            raise UserError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
        raw = merge(raw or {}, parse_overrides(list(overrides)))
    return config_from_dict(raw, source)


def config_to_dict(cfg: Config) -> dict:
    return asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
