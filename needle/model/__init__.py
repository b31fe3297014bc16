"""The Needle model: configuration, network and checkpoints."""
from needle.model.config import PRESETS, NeedleConfig
from needle.model.model import KVCache, Needle, count_parameters

__all__ = ["PRESETS", "NeedleConfig", "KVCache", "Needle", "count_parameters"]
