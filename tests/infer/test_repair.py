"""Span repair: a required string the request does not contain is re-chosen among the request's spans, by the
model's own scores, before grounding would drop the call."""
import pytest
import torch
import torch.nn.functional as F

from needle.data.format import compact, decoder_prefix, encode_prompt
from needle.data.schema import parse_tools
from needle.infer.engine import Engine
from needle.infer.generate import generate_fast, pad_batch
from needle.infer.predict import Predictor
from needle.infer.repair import (Encoded, closing_ids, encode_request, query_spans, repair_calls, shared_rows,
                                 span_logprobs, value_prefix)

CREATE_LIST = {"name": "create_list", "description": "Create a new named list (shopping, to-do, packing...), "
               "optionally shared with people.", "parameters": {"type": "object", "properties": {
                   "shared_with": {"type": "array", "items": {"type": "string"},
                                   "description": "People who can see and edit the list."},
                   "list_type": {"type": "string", "enum": ["shopping", "to-do", "packing", "wishlist", "checklist"],
                                 "default": "checklist", "description": "Kind of list."},
                   "name": {"type": "string", "description": "Name of the new list."}},
                   "required": ["name"], "additionalProperties": False}}


def test_query_spans_are_word_runs_without_outer_punctuation():
    spans = query_spans("Book the Hilton, in Chicago's centre!", max_words=2)
    assert spans[:3] == ["Book", "Book the", "the"]
    assert "Hilton" in spans and "Hilton, in" in spans and "Chicago's" in spans and "Chicago" in spans
    assert "centre" in spans and not any(s.endswith(("!", ",")) or not s for s in spans)
    assert query_spans("") == [] and query_spans("?! ...") == []


def test_prefix_is_the_answer_up_to_the_value():
    calls = [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"p": "q", "loc": "zz", "r": [2]}}]
    prefix = value_prefix(calls, 1, "loc")
    assert prefix == '[{"name":"a","arguments":{"x":1}},{"name":"b","arguments":{"p":"q","loc":'
    assert compact(calls).startswith(prefix + '"zz"')
    assert value_prefix(calls, 0, "x") == '[{"name":"a","arguments":{"x":'


def test_span_scores_equal_teacher_forced_log_probabilities(tiny_model, tok, tools):
    """The cached, batched scoring gives what one plain forward pass over each whole answer gives."""
    offered = parse_tools(tools, where="test")
    query = "turn the kitchen lights to 40 percent please"
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    prefix, spans = '[{"name":"set_lights","arguments":{"room":"', ["kitchen", "kitchen lights", "40", "please"]
    memory = encode_request(tiny_model, enc)
    got = span_logprobs(tiny_model, tok, memory, prefix, spans)
    closing = closing_ids(tok)
    ids = torch.tensor([enc])
    mask = torch.ones_like(ids, dtype=torch.bool)
    for span, score in zip(spans, got):
        seq = decoder_prefix(tok) + tok.encode(prefix + span)
        shared = len(decoder_prefix(tok) + tok.encode(prefix))
        with torch.no_grad():
            logp = F.log_softmax(tiny_model(ids, mask, torch.tensor([seq])), -1)[0]
        want = sum(logp[t - 1, seq[t]] for t in range(shared, len(seq))) + logp[-1, closing].logsumexp(-1)
        assert abs(score - float(want)) < 1e-3
    assert len(set(round(s, 3) for s in got)) == len(spans)
    assert span_logprobs(tiny_model, tok, memory, prefix, spans, floor=0.5) == [float("-inf")] * len(spans)
    top = span_logprobs(tiny_model, tok, memory, prefix, spans, top=2)  # the 2 best first tokens, in full
    assert sum(t > float("-inf") for t in top) == 2 and all(t == pytest.approx(g, abs=1e-4) for t, g in zip(top, got)
                                                           if t > float("-inf"))
    floor = sorted(got)[1] + 1e-3  # a span is dropped after its first token, or scored in full
    for p, g in zip(span_logprobs(tiny_model, tok, memory, prefix, spans, floor=floor), got):
        assert p == pytest.approx(g, abs=1e-4) or (g < floor and p == float("-inf"))


def test_spans_that_begin_another_are_read_off_its_row():
    rows, member = shared_rows([[1, 2], [1, 2, 3], [4], [1, 2, 3], [1, 5], [1]])
    assert rows == [[1, 2, 3], [1, 5], [4]]
    assert member == [(0, 2), (0, 3), (2, 1), (0, 3), (1, 2), (0, 1)]
    assert shared_rows([]) == ([], [])


def test_one_row_scores_every_span_it_begins_with(tiny_model, tok, tools, monkeypatch):
    """Spans from one word ("the", "the kitchen", "the kitchen lights") are decoded as one row: fewer rows than
    spans, the same scores as each span decoded alone."""
    offered = parse_tools(tools, where="test")
    query = "turn the kitchen lights to 40 percent please"
    memory = encode_request(tiny_model, encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids)
    prefix, spans = '[{"name":"set_lights","arguments":{"room":"', query_spans(query)
    alone = [span_logprobs(tiny_model, tok, memory, prefix, [s])[0] for s in spans]
    rows = []
    real_decode = tiny_model.decode
    monkeypatch.setattr(tiny_model, "decode", lambda ids, *a, **k: rows.append(len(ids)) or real_decode(ids, *a, **k))
    together = span_logprobs(tiny_model, tok, memory, prefix, spans)
    assert together == pytest.approx(alone, abs=1e-4)
    assert len(spans) == 33 and rows[0] == 1 and sum(rows[1:]) < len(spans) / 2


def test_scoring_reuses_the_encoding_made_while_decoding(tiny_model, tok, tools, monkeypatch):
    """The rules after decoding score from the engine's encoder output (padded batch rows cut to their prompts):
    the same scores as a fresh encoder pass, with no second one, and one encoding shared by every rule."""
    offered = parse_tools(tools, where="test")
    prompts = [encode_prompt(tok, q, offered, tiny_model.cfg.max_encoder_len).ids
               for q in ("turn the kitchen lights to 40 percent please", "kitchen to 40")]
    ids, mask = pad_batch(prompts, tok.pad_id)
    out = []
    generate_fast(Engine(tiny_model, "fp32"), ids, mask, torch.tensor([decoder_prefix(tok)] * 2), 3, tok.eos_id,
                  tok.pad_id, encoded=out)
    assert len(out) == 1 and out[0].shape == (2, ids.shape[1], tiny_model.cfg.d_model)
    prefix, spans = '[{"name":"set_lights","arguments":{"room":"', ["kitchen", "kitchen lights", "40"]
    want = [span_logprobs(tiny_model, tok, encode_request(tiny_model, p), prefix, spans) for p in prompts]
    encodes = []
    real_encode = tiny_model.encode
    monkeypatch.setattr(tiny_model, "encode", lambda *a: encodes.append(1) or real_encode(*a))
    for j, p in enumerate(prompts):
        shared = Encoded(tiny_model, p, out[0][j, :len(p)])
        assert shared.cross() is shared.cross()
        got = span_logprobs(tiny_model, tok, shared.cross(), prefix, spans)
        assert got == pytest.approx(want[j], abs=1e-3)
    assert encodes == []
    lazy = Encoded(tiny_model, prompts[0])  # no encoder output given: encoded once, when first needed
    assert encodes == [] and lazy.cross() is lazy.cross() and encodes == [1]
    with pytest.raises(ValueError, match="positions"):
        encode_request(tiny_model, prompts[1], out[0][1])  # the padded row, not cut to its prompt


def test_spans_that_would_not_fit_the_decoder_are_not_scored(tiny_model, tok, tools):
    enc = encode_prompt(tok, "the kitchen", parse_tools(tools, where="test"), tiny_model.cfg.max_encoder_len).ids
    room = tiny_model.cfg.max_decoder_len - len(decoder_prefix(tok))
    prefix = '[{"name":"f","arguments":{"x":"' + "y" * 10_000  # far more tokens than the decoder holds
    got = span_logprobs(tiny_model, tok, encode_request(tiny_model, enc), prefix, ["kitchen"])
    assert len(tok.encode(prefix)) > room and got == [float("-inf")]
    short = '[{"name":"f","arguments":{"x":"'
    mixed = span_logprobs(tiny_model, tok, encode_request(tiny_model, enc), short, ["kitchen", "z " * room])
    assert mixed[0] > float("-inf") and mixed[1] == float("-inf")


def test_repair_leaves_values_the_request_contains_alone(tiny_model, tok):
    offered = parse_tools([CREATE_LIST], where="test")
    query = "make a shopping list named Weekend"
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "create_list", "arguments": {"name": "Weekend", "list_type": "shopping"}}]
    assert repair_calls(tiny_model, tok, enc, calls, offered, query) == (calls, [])
    invented = [{"name": "create_list", "arguments": {"name": "create_list"}}]
    fixed, notes = repair_calls(tiny_model, tok, enc, invented, offered, query, min_logprob=-1e9)
    assert fixed[0]["arguments"]["name"] in query_spans(query) and invented[0]["arguments"]["name"] == "create_list"
    assert len(notes) == 1 and notes[0].startswith("create_list's required name=\"create_list\" is not in the request")
    assert repair_calls(tiny_model, tok, enc, invented, offered, query, min_logprob=0.5) == (invented, [])


def test_repair_takes_only_spans_that_fit_the_arguments_schema(tiny_model, tok):
    tool = {"name": "set_alarm", "description": "Set an alarm.", "parameters": {"type": "object", "properties": {
        "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}}, "required": ["time"]}}
    offered = parse_tools([tool], where="test")
    enc = encode_prompt(tok, "wake me at 06:45 tomorrow", offered, tiny_model.cfg.max_encoder_len).ids
    invented = [{"name": "set_alarm", "arguments": {"time": "07:00"}}]
    fixed, notes = repair_calls(tiny_model, tok, enc, invented, offered, "wake me at 06:45 tomorrow", min_logprob=-1e9)
    assert fixed[0]["arguments"]["time"] == "06:45" and len(notes) == 1  # the one span that fits, however unlikely
    enc = encode_prompt(tok, "wake me tomorrow", offered, tiny_model.cfg.max_encoder_len).ids
    assert repair_calls(tiny_model, tok, enc, invented, offered, "wake me tomorrow", min_logprob=-1e9) == (invented, [])


def test_shipped_model_writes_the_list_name_it_failed_to_copy():
    requests = [("make a new list named Christmas Gifts", parse_tools([CREATE_LIST], where="test"))]
    repaired = Predictor(batch_size=1).predict(requests)[0]  # the default
    assert repaired.calls == [{"name": "create_list", "arguments": {"name": "Christmas Gifts"}}]
    # (phase 10's weights wrote the tool's name as the list's, which repair replaced; phase 12's copy it right)
