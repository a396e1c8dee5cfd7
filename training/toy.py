"""The toy models: what the lessons and the playground show when no checkpoint is named, trained on first use.
(Cheap to import: the command lines offer the kinds as choices before they load anything.)

Two read the same toy corpus: ``word`` (the default: a token per word, digit or mark) and ``char`` (a token per
character), so that the same facts can be watched at either grain.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOY_CONFIGS = {"word": ROOT / "configs" / "toy_words.yaml", "char": ROOT / "configs" / "toy.yaml"}
TOY_CORPUS = ROOT / "data" / "toy_corpus.txt"
DEFAULT_TOY = "word"


def toy_checkpoint(kind: str = DEFAULT_TOY, log=print) -> Path:
    """The ``kind`` toy model's best.pt, trained first if it is not there yet (about a minute or two on 2 CPU
    cores)."""
    from core.config import load_config
    from training.trainer import train

    config = TOY_CONFIGS[kind]
    corpus = TOY_CORPUS                                                 # found from any folder the command runs in
    cfg = load_config(config, [f"data.path={corpus}"] if corpus.is_file() else [])
    checkpoint = Path(cfg.train.out_dir) / "best.pt"
    if not checkpoint.exists():
        log(f"{checkpoint} not found: training the {kind} toy model first ({os.path.relpath(config)}, "
            "a minute or two on 2 CPU cores)")
        if train(cfg, log=log).interrupted:            # never over an unfinished run there: that is an error
            raise KeyboardInterrupt
    return checkpoint
