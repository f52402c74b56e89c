"""Training: configs, the loop (single process or torchrun DDP), checkpoints, metrics.

``train(config, overrides=()) -> dict`` is the library entry; ``focusclip train --config X.yaml`` wraps it.
"""

from focusclip.train.config import TrainConfig, load_config
from focusclip.train.loop import NonFiniteLossError, train

__all__ = ["NonFiniteLossError", "TrainConfig", "load_config", "train"]
