"""Grammar-constrained decoding: the offered tools' JSON Schemas compiled into a token grammar (llguidance).

The answer is a compact JSON list of {"name", "arguments"} objects: names only from the offered tools,
argument keys only from that tool's schema (in schema order, each at most once, every required key),
values obeying type, enum, bounds, integer vs number, array items and nested objects; `[]` is always
allowed. llguidance compiles the schema into a lexer + parser over our BPE vocabulary, gives each step's
allowed tokens as a bitmask (tens of microseconds) and the tokens the grammar forces (jump-forward).
Schemas it cannot compile are loosened one tool at a time, and each loosening is reported as a warning.
"""
from __future__ import annotations

import copy
import json
from collections import OrderedDict

import llguidance
import torch

from needle.data.schema import Tool
from needle.infer.cues import number_cues, positional_keys
from needle.infer.toolprior import NAME_BYTES as NAME_OPENING, name_choice

# Compact JSON exactly as the model was trained to write it (needle.data.format.compact).
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
LOOSENED_KEYWORDS = ("pattern", "format", "patternProperties")  # what the grammar drops when it must


def closed(schema):
    """The schema with `additionalProperties: false` on every object that lists properties and says nothing
    about others, recursively: the model may use only the argument keys a schema names."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) if k in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties")
           else v for k, v in schema.items()}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    return out


def _loosened(schema):
    if isinstance(schema, list):
        return [_loosened(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _loosened(v) for k, v in schema.items() if k not in LOOSENED_KEYWORDS}


def _call_schema(name: str, arguments: dict) -> dict:
    return {"type": "object", "properties": {"name": {"const": name}, "arguments": arguments},
            "required": ["name", "arguments"], "additionalProperties": False}


def calls_schema(tools: list[Tool], arguments: dict[str, dict] | None = None) -> dict:
    """The JSON Schema of a whole answer: a list of calls to the offered tools ([] always valid)."""
    arguments = arguments or {}
    items = [_call_schema(t.name, arguments.get(t.name, closed(t.parameters))) for t in tools]
    if not items:
        return {"type": "array", "maxItems": 0}
    return {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items}}


def _grammar(schema: dict, lenient: bool) -> str:
    options = {**JSON_OPTIONS, "lenient": lenient}  # lenient: skip keywords llguidance does not implement
    return llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=options)


def _grammar_error(schema: dict, lenient: bool = False) -> str:
    return llguidance.LLMatcher.validate_grammar(_grammar(schema, lenient))


class CallGrammar:
    """One request's grammar state over the vocabulary: allowed next tokens, forced tokens, consumption,
    and the answer's bytes so far (to tell when a tool name comes next, and to end the list early)."""

    def __init__(self, matcher: llguidance.LLMatcher, lltok: llguidance.LLTokenizer, warnings: list[str],
                 pieces: list[bytes], query: bytes = b"", cues: dict | None = None, positional: dict | None = None):
        self.matcher, self.lltok, self.warnings, self.pieces = matcher, lltok, warnings, pieces
        self.text = b""
        self.query = query  # the request's bytes, for the copy bias (needle/infer/copying.py); b"": no bias
        self.cues = cues or {}  # tool name -> argument -> the request's numbers cued to it (needle/infer/cues.py)
        self.positional = positional or {}  # tool name -> arguments whose numbers go in the request's order
        self.names = None  # the offered names' tokens and relevance to the request (needle/infer/toolprior.py)

    def copy(self, query: str = "", tools: list[Tool] = ()) -> "CallGrammar":
        props = {t.name: (t.parameters or {}).get("properties") or {} for t in tools}
        cues = {name: number_cues(query, list(p)) for name, p in props.items()}
        positional = {name: positional_keys(p, cues[name]) for name, p in props.items()}
        return CallGrammar(self.matcher.deep_copy(), self.lltok, list(self.warnings), self.pieces,
                           query.encode("utf-8"), cues, positional)

    def fill_mask(self, row: torch.Tensor) -> None:
        """Write the allowed-token bitmask (int32, vocab/32 words, bit i of word w = token 32w + i) into row."""
        self.matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())

    def consume(self, tokens: list[int]) -> None:
        if not self.matcher.consume_tokens(tokens):
            raise RuntimeError(f"grammar rejected tokens {tokens}: {self.matcher.get_error()}")
        self.text += self.lltok.decode_bytes(tokens)

    @property
    def at_name(self) -> bool:
        """True when the next tokens are a tool name."""
        return self.text.endswith(NAME_OPENING)

    def closed_before_this_call(self) -> list[int]:
        """Tokens of the answer with the call being started dropped and the list closed: '[' -> '[]',
        '[{...},' -> '[{...}]'. For ending an answer when the model wants a tool that is not offered."""
        head = self.text[:self.text.rfind(NAME_OPENING)].rstrip(b",")
        return self.lltok.tokenize_bytes(head + b"]")

    def forced(self) -> list[int]:
        """Tokens the grammar now allows exactly one way (JSON punctuation, the rest of a name or key)."""
        return self.matcher.compute_ff_tokens()

    @property
    def finished(self) -> bool:
        """True when the answer is complete: only <eos> may follow."""
        return self.matcher.is_stopped()


class Grammars:
    """Builds CallGrammars for one tokenizer (the vocabulary is indexed once, in about 20 ms) and keeps the
    last `cache_size` tool sets compiled: an assistant offers the same tools query after query."""

    def __init__(self, tok, cache_size: int = 64):
        self.tok = tok
        self.lltok = llguidance.LLTokenizer(tok.to_str(with_metadata=False), n_vocab=tok.vocab_size,
                                            eos_token=tok.eos_id)
        self.pieces = [self.lltok.decode_bytes([i]) for i in range(tok.vocab_size)]  # each token's bytes
        self.cache: OrderedDict[str, CallGrammar] = OrderedDict()
        self.cache_size = cache_size

    def for_tools(self, tools: list[Tool], query: str = "") -> CallGrammar:
        """A fresh grammar state for these tools; `query`, the request, is what the copy bias copies from."""
        key = json.dumps([t.to_dict() for t in tools], sort_keys=False)
        if key not in self.cache:
            self.cache[key] = self._compile(tools)
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        grammar = self.cache[key].copy(query, tools)
        grammar.names = name_choice(self.tok, self.pieces, query, tools)
        return grammar

    def _matcher(self, schema: dict, lenient: bool = False) -> llguidance.LLMatcher:
        return llguidance.LLMatcher(self.lltok, _grammar(schema, lenient), log_level=0)

    def _compile(self, tools: list[Tool]) -> CallGrammar:
        """The grammar of an answer to these tools. A schema the grammar engine cannot compile exactly is
        loosened, one tool at a time, as little as needed (each step named in the grammar's warnings):
        unimplemented keywords such as uniqueItems skipped; then pattern/format dropped; then free arguments."""
        matcher = self._matcher(calls_schema(tools))
        if not matcher.is_error():
            return CallGrammar(matcher, self.lltok, [], self.pieces)
        arguments, warnings = {}, []
        for t in tools:
            error = _grammar_error(calls_schema([t]))
            if not error:
                continue
            first = error.splitlines()[0]
            if not _grammar_error(calls_schema([t]), lenient=True):
                warnings.append(f"tool {t.name!r}: the grammar does not enforce part of its schema ({first})")
                continue
            loose = _loosened(copy.deepcopy(closed(t.parameters)))
            if not _grammar_error(calls_schema([t], {t.name: loose}), lenient=True):
                arguments[t.name] = loose
                warnings.append(f"tool {t.name!r}: the grammar ignores its {'/'.join(LOOSENED_KEYWORDS)} ({first})")
            else:
                arguments[t.name] = {"type": "object"}
                warnings.append(f"tool {t.name!r}: arguments unconstrained, its schema does not compile ({first})")
        matcher = self._matcher(calls_schema(tools, arguments), lenient=True)
        if matcher.is_error():
            raise ValueError(f"the offered tools' grammar does not compile: {matcher.get_error()}")
        return CallGrammar(matcher, self.lltok, warnings, self.pieces)


_SHIFTS = torch.arange(32, dtype=torch.int32)


def allowed_from_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B, vocab/32) int32 bitmask -> (B, vocab) bool."""
    return ((bitmask.unsqueeze(-1) >> _SHIFTS) & 1).bool().view(bitmask.shape[0], -1)[:, :vocab_size]
