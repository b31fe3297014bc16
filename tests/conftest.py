"""Shared fixtures: the shipped tokenizer, a `tiny` model with random weights, and its checkpoint."""
from __future__ import annotations

import pytest
import torch

from needle.model import Needle, NeedleConfig
from needle.model.checkpoint import save_checkpoint
from needle.tokenizer import Tokenizer, default_tokenizer_path

WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string", "description": "City name"},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}
TIMER = {"type": "function", "function": {"name": "set_timer", "description": "Start a countdown timer.",
         "parameters": {"type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1}},
                        "required": ["minutes"]}}}


@pytest.fixture(scope="session")
def tok() -> Tokenizer:
    return Tokenizer.from_file(default_tokenizer_path())


@pytest.fixture(scope="session")
def tiny_model() -> Needle:
    torch.manual_seed(0)
    return Needle(NeedleConfig.from_name("tiny")).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, tiny_model, default_tokenizer_path(), {"note": "random weights for tests"})
    return str(path)


@pytest.fixture
def tools() -> list[dict]:
    return [WEATHER, TIMER]
