"""The model side: the FocusCLIP module, its towers and focus mechanisms, tokenizers, transforms, the
registry of JSON model configs and the factory functions.

Layout (one concept per file; a new tower family or focus mechanism is one new file)::

    focusclip.py     the FocusCLIP nn.Module (towers + projections + ROI branch + logit scale)
    towers/          tower families: timm_vision.py, hybrid_vision.py, hf_text.py, whole CLIPs: openclip.py, hf_clip.py
                     (+ weights.py, base.py)
    names.py         the CLIP names users type (openclip:ARCH/TAG, hfclip:ID, ...) -> model configs
    long_text.py     long-text strategies (truncate, sentences, Long-CLIP stretch)
    merge.py         weight-space ensembling (WiSE-FT)
    export.py        a whole-CLIP FocusCLIP back to open_clip / Hugging Face checkpoints
    focus/           focus mechanisms: highlight.py (+ base.py, the interface)
    tokenizer.py     text -> token tensors, outside the model
    transforms.py    image + heatmap + keypoints + boxes transforms
    factory.py       registry, create_model(_and_transforms), get_tokenizer, save_model / load_model
    model_configs/   the registered model configs (JSON)
"""

from focusclip.model.factory import (
    add_model_config,
    create_model,
    create_model_and_transforms,
    get_model_config,
    get_tokenizer,
    list_models,
    load_model,
    save_model,
)
from focusclip.model.focusclip import FocusCLIP
from focusclip.model.transforms import SampleTransform, eval_transform

__all__ = ["FocusCLIP", "SampleTransform", "add_model_config", "create_model", "create_model_and_transforms",
           "eval_transform", "get_model_config", "get_tokenizer", "list_models", "load_model", "save_model"]
