"""FocusCLIP: CLIP-style language-image pretraining with subject-level guidance."""

from focusclip.factory import (
    add_model_config,
    create_model,
    create_model_and_transforms,
    get_model_config,
    get_tokenizer,
    list_models,
    load_model,
    save_model,
)
from focusclip.loss import ClipLoss, FocusCLIPLoss, NTXentLoss, nt_xent
from focusclip.model import FocusCLIP
from focusclip.predict import ZeroShotClassifier, embed_images, embed_texts

__version__ = "0.1.0"

__all__ = [
    "FocusCLIP",
    "ZeroShotClassifier",
    "embed_images",
    "embed_texts",
    "ClipLoss",
    "FocusCLIPLoss",
    "NTXentLoss",
    "nt_xent",
    "add_model_config",
    "create_model",
    "create_model_and_transforms",
    "get_model_config",
    "get_tokenizer",
    "list_models",
    "load_model",
    "save_model",
    "__version__",
]
