"""Tool shortlisting: when the offered tools do not fit in the 1,024-token encoder, answer with the most relevant.

Tools are ranked by BM25 (`rank_bm25`) between the request's words and each tool's text (name words counted
three times, description, parameters' names, descriptions and enum values); of the best 40, the best ranked
are kept in their offered order while they fit beside the whole request, at most `MAX_TOOLS` (the training
maximum). Lexical: a request sharing no word with the right tool misses it ("dim the kitchen to 10", `set_lights`).
"""
from __future__ import annotations

from needle.data.format import MIN_QUERY_TOKENS, tools_json
from needle.data.respell import words  # lower-case words of identifiers (getWeather, set_lights) and free text
from needle.data.schema import Tool

MAX_TOOLS = 10  # the most tools one training example offers


def _schema_text(schema, depth: int = 0) -> list[str]:
    """Property names, descriptions and enum values of a JSON Schema, nested ones included."""
    if not isinstance(schema, dict) or depth > 6:
        return []
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        out.append(str(name))
        if isinstance(prop, dict):
            out += [str(prop.get("description", ""))] + [str(v) for v in prop.get("enum") or []]
            out += _schema_text(prop, depth + 1) + _schema_text(prop.get("items"), depth + 1)
    return out


def tool_words(tool: Tool) -> list[str]:
    """The words BM25 ranks a tool by; the name's count three times (it says what the tool is for)."""
    return words(tool.name) * 3 + words(" ".join([tool.description, *_schema_text(tool.parameters)]))


def rank_tools(query: str, tools: list[Tool]) -> list[int]:
    """Tool positions, most relevant to the query first (ties keep the offered order)."""
    from rank_bm25 import BM25Okapi  # imported here: most requests fit, and the GPU image lacks it
    scores = BM25Okapi([tool_words(t) or ["_"] for t in tools]).get_scores(words(query))
    return sorted(range(len(tools)), key=lambda i: (-scores[i], i))


def shortlist(tok, query: str, tools: list[Tool], max_len: int, max_tools: int = MAX_TOOLS) -> list[Tool]:
    """The most relevant tools that fit in `max_len` encoder tokens beside the request (or beside
    MIN_QUERY_TOKENS of it, for a request longer than that), in the offered order; [] when none fits."""
    query_tokens = max(MIN_QUERY_TOKENS, min(len(tok.encode(query)), max_len // 2))
    budget = max_len - query_tokens - 1  # the <tools> marker
    kept: list[int] = []
    for i in rank_tools(query, tools)[:4 * max_tools]:
        trial = sorted(kept + [i])
        if len(tok.encode(tools_json([tools[j] for j in trial]))) <= budget:
            kept = trial
            if len(kept) == max_tools:
                break
    return [tools[j] for j in kept]
