"""Needle: a tiny attention-only encoder-decoder that turns a request plus tools into function calls."""
__version__ = "0.1.0"
