"""The toy model: what the lessons and the playground show when no checkpoint is named, trained on first use."""
import os
from pathlib import Path

from core.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TOY_CONFIG = ROOT / "configs" / "toy.yaml"


def toy_checkpoint(log=print) -> Path:
    """The toy model's best.pt, trained first (about 2 minutes on 2 CPU cores) if it is not there yet."""
    from training.trainer import train

    corpus = TOY_CONFIG.parents[1] / "data" / "toy_corpus.txt"        # found from any folder the command runs in
    cfg = load_config(TOY_CONFIG, [f"data.path={corpus}"] if corpus.is_file() else [])
    checkpoint = Path(cfg.train.out_dir) / "best.pt"
    if not checkpoint.exists():
        log(f"{checkpoint} not found: training the toy model first ({os.path.relpath(TOY_CONFIG)}, "
            "about 2 minutes on 2 CPU cores)")
        if train(cfg, log=log).interrupted:            # never over an unfinished run there: that is an error
            raise KeyboardInterrupt
    return checkpoint
