"""The file names of the formats focusclip writes and reads, in one place.

A saved model (:func:`focusclip.model.factory.save_model`) is one directory::

    config.json         {"format": "focusclip", "version": ..., "model": <model config>, ...}
    model.safetensors   the state dict (no pickle)
    tokenizer/          the tokenizer files

An open_clip checkpoint folder (what ``focusclip export`` writes for open_clip models, what
``openclip:local-dir:FOLDER`` reads, and a saved open_clip tokenizer) holds ``open_clip_config.json`` and
``open_clip_model.safetensors``.
"""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
FORMAT_NAME = "focusclip"  #: the ``format`` field of a saved model's config.json

OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"

#: a transformers model folder's config (a CLIPModel's has ``model_type: clip``)
HF_CONFIG_FILE = "config.json"
