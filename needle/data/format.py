"""THE prompt layout (SPEC §2), in exactly one place.

Encoder: query tokens + <tools> + compact tools JSON (the query is truncated first; tools are never
dropped: ToolsTooLong says so). Decoder input: <eos> <tool_call> answer; target: <tool_call> answer
<eos>. Answer: compact JSON list of calls. Each target token carries a loss weight by role (tool name
2.0, argument key 1.5, argument value 4.0, punctuation 1.0). The tokenizer is passed in, not imported.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

from needle.data.schema import Call, Example, Tool

PUNCT, NAME, KEY, VALUE = 0, 1, 2, 3
ROLE_WEIGHTS = {PUNCT: 1.0, NAME: 2.0, KEY: 1.5, VALUE: 4.0}
MIN_QUERY_TOKENS = 16  # room always left for the query when checking whether the tools fit


class ToolsTooLong(ValueError):
    """The offered tools alone do not fit in the encoder; we refuse rather than drop tools silently."""


@dataclass
class Prompt:
    ids: list[int]
    query_tokens: int
    query_truncated_from: int | None  # original query length in tokens when it was cut, else None


@dataclass
class EncodedExample:
    enc_ids: list[int]
    dec_in: list[int]
    target: list[int]
    weights: list[float]


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def tools_json(tools: list[Tool]) -> str:
    return compact([t.to_dict() for t in tools])


def _value_pieces(value, role_for_scalars: int) -> list[tuple[str, int]]:
    """Pieces of compact JSON for a value; keys inside nested objects count as keys, scalars as values."""
    if isinstance(value, dict):
        out = [("{", PUNCT)]
        for i, (k, v) in enumerate(value.items()):
            out += [("," if i else "", PUNCT), ('"', PUNCT), (compact(k)[1:-1], KEY), ('":', PUNCT)]
            out += _value_pieces(v, role_for_scalars)
        return out + [("}", PUNCT)]
    if isinstance(value, list):
        out = [("[", PUNCT)]
        for i, v in enumerate(value):
            out += [("," if i else "", PUNCT)] + _value_pieces(v, role_for_scalars)
        return out + [("]", PUNCT)]
    if isinstance(value, str):
        return [('"', PUNCT), (compact(value)[1:-1], role_for_scalars), ('"', PUNCT)]
    return [(compact(value), role_for_scalars)]


def answer_pieces(calls: list[Call]) -> list[tuple[str, int]]:
    """The answer JSON as (text, role) pieces; ''.join(texts) == compact([c.to_dict() for c in calls])."""
    out = [("[", PUNCT)]
    for i, call in enumerate(calls):
        out += [("," if i else "", PUNCT), ('{"name":"', PUNCT), (compact(call.name)[1:-1], NAME),
                ('","arguments":', PUNCT)]
        out += _value_pieces(call.arguments, VALUE)
        out.append(("}", PUNCT))
    return [p for p in out + [("]", PUNCT)] if p[0]]


def answer_json(calls: list[Call]) -> str:
    return "".join(text for text, _ in answer_pieces(calls))


def _shuffle_schema(schema: dict, rng: random.Random) -> dict:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return schema
    names = list(props)
    rng.shuffle(names)
    return {**schema, "properties": {n: _shuffle_schema(props[n], rng) if isinstance(props[n], dict) else props[n]
                                     for n in names}}


def _order_like(args: dict, schema: dict) -> dict:
    """Argument keys in the (shuffled) order of the schema, so the target order is predictable."""
    props = schema.get("properties", {})
    order = [k for k in props if k in args] + [k for k in args if k not in props]
    return {k: _order_like(args[k], props.get(k, {})) if isinstance(args[k], dict) else args[k] for k in order}


def shuffle_example(ex: Example, rng: random.Random) -> Example:
    """Shuffle tool order and parameter order; argument keys follow the new parameter order."""
    tools = [Tool(t.name, t.description, _shuffle_schema(t.parameters, rng)) for t in ex.tools]
    rng.shuffle(tools)
    by_name = {t.name: t for t in tools}
    answers = [Call(c.name, _order_like(c.arguments, by_name[c.name].parameters if c.name in by_name else {}))
               for c in ex.answers]
    return Example(ex.query, tools, answers)


def encode_prompt(tok, query: str, tools: list[Tool], max_len: int) -> Prompt:
    tool_ids = [tok.tools_id] + tok.encode(tools_json(tools))
    budget = max_len - len(tool_ids)
    if budget < MIN_QUERY_TOKENS:
        raise ToolsTooLong(f"the {len(tools)} offered tools take {len(tool_ids)} tokens; with the query they must "
                           f"fit in {max_len} encoder tokens (at most {max_len - MIN_QUERY_TOKENS} for tools). "
                           f"Offer fewer tools or shorten their descriptions.")
    query_ids = tok.encode(query)
    cut = None
    if len(query_ids) > budget:
        cut, query_ids = len(query_ids), query_ids[:budget]
    return Prompt(query_ids + tool_ids, len(query_ids), cut)


def encode_answer(tok, calls: list[Call]) -> tuple[list[int], list[float]]:
    """Answer token ids and a loss weight per token: the highest role weight among the characters it covers."""
    pieces = answer_pieces(calls)
    text = "".join(p for p, _ in pieces)
    char_w = []
    for piece, role in pieces:
        char_w += [ROLE_WEIGHTS[role]] * len(piece)
    ids, offsets = tok.encode_with_offsets(text)
    weights = [max(char_w[s:e], default=1.0) for s, e in offsets]
    return ids, weights


def encode_example(tok, ex: Example, max_enc: int, max_dec: int, rng: random.Random | None = None) -> EncodedExample:
    """Encoder ids, decoder input, target and per-token weights; shuffles orders when rng is given."""
    if rng is not None:
        ex = shuffle_example(ex, rng)
    prompt = encode_prompt(tok, ex.query, ex.tools, max_enc)
    ans_ids, ans_w = encode_answer(tok, ex.answers)
    if len(ans_ids) + 2 > max_dec:
        raise ToolsTooLong(f"the answer takes {len(ans_ids) + 2} decoder tokens, more than max_decoder_len={max_dec}")
    dec_in = [tok.eos_id, tok.tool_call_id] + ans_ids
    target = [tok.tool_call_id] + ans_ids + [tok.eos_id]
    return EncodedExample(prompt.ids, dec_in, target, [1.0] + ans_w + [1.0])


def decoder_prefix(tok) -> list[int]:
    """What generation starts from: the decoder input before the first answer token."""
    return [tok.eos_id, tok.tool_call_id]


def parse_answer(text: str) -> list[dict] | None:
    """The calls in a generated answer, or None when it is not a JSON list of {name, arguments} objects."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    calls = []
    for c in value:
        if not (isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)):
            return None
        calls.append({"name": c["name"], "arguments": c.get("arguments", {})})
    return calls


def complete_calls(text: str) -> list[dict]:
    """The finished calls at the start of an answer cut off mid-way ('[{...},{"name":"x","argu' -> [{...}])."""
    decoder, calls = json.JSONDecoder(), []
    i = 1 if text.startswith("[") else len(text)
    while i < len(text):
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        if not (isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("arguments", {}), dict)):
            break
        calls.append({"name": obj["name"], "arguments": obj.get("arguments", {})})
        if text[i:i + 1] != ",":
            break
        i += 1
    return calls
