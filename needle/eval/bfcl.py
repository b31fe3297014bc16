"""BFCL v4 single-turn Python categories: load the data shipped in `bfcl-eval`, score with BFCL's own checker.

Needs `pip install --no-deps bfcl-eval==2026.3.23`; imported lazily so this module loads without it. The AST
checker imports BFCL's model-config module (every vendor SDK) for one flag; a stand-in module answers it.
Queries join the turn's messages in order; tools are JSON Schema converted from BFCL's Python-ish docs.
"""
from __future__ import annotations

import functools
import importlib
import json
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from needle.data.generator import normalise_query

AST_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple",
                  "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
              "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
              "live_irrelevance", "live_relevance")
NON_LIVE_AST = AST_CATEGORIES[:4]
LIVE_AST = AST_CATEGORIES[4:]
IRRELEVANCE = ("irrelevance", "live_irrelevance")

# BFCL appends this to every function description it shows a model (utils._get_language_specific_hint);
# its checker reads the docs without it.
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
# BFCL type name -> JSON Schema type; None = no type constraint. NOTE: BFCL's own OpenAI conversion maps
# "any" to "string", and every ground-truth value of an "any" parameter is a string.
TYPE_MAP = {"dict": "object", "float": "number", "tuple": "array", "any": None, "integer": "integer",
            "boolean": "boolean", "string": "string", "array": "array", "object": "object", "number": "number"}
# The name we give the checker; the stand-in config says it keeps dots in function names.
MODEL_NAME = "needle"


@dataclass
class BfclItem:
    id: str
    category: str
    query: str
    tools: list[dict]       # OpenAI function format: {name, description, parameters: JSON Schema}
    functions: list         # BFCL's original function docs (what the checker reads)
    answer: list | None     # BFCL's possible answers; None for (ir)relevance categories


def data_dir() -> Path:
    try:
        return Path(str(resources.files("bfcl_eval") / "data"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError("BFCL needs its data package: pip install --no-deps bfcl-eval==2026.3.23") from None


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def join_messages(messages: list[dict]) -> str:
    """One query from one turn: contents in order (system prompt first, as BFCL puts it), blank-line separated.

    96 of the 3,491 items have more than a user message: 91 a system prompt, 9 (all live_irrelevance) an
    earlier exchange or several user messages.
    """
    return "\n\n".join(m["content"].strip() for m in messages if m.get("content", "").strip())


def to_json_schema(bfcl_params: dict) -> dict:
    """BFCL parameter docs -> JSON Schema: dict->object, float->number, tuple->array, any->no type; recursive.

    enum/default/description/required and any other keyword pass through unchanged.
    """
    out = {}
    for key, value in bfcl_params.items():
        if key == "type":
            if value not in TYPE_MAP:
                raise ValueError(f"unknown BFCL type {value!r}")
            if TYPE_MAP[value] is not None:
                out["type"] = TYPE_MAP[value]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(spec) for name, spec in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    return out


def to_tool(function: dict, hint: bool = True) -> dict:
    params = to_json_schema(function.get("parameters") or {"type": "dict", "properties": {}})
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    description = function.get("description", "") + (PYTHON_HINT if hint else "")
    return {"name": function["name"], "description": description, "parameters": params}


def load_bfcl(categories: Iterable[str] | None = None, limit: int | None = None,
              hint: bool = True) -> list[BfclItem]:
    """Items of `categories` (default: all of CATEGORIES) in file order, the first `limit` of each.

    hint=True appends BFCL's " Note that the provided function is in Python 3 syntax." to each tool
    description, as BFCL does for every model it evaluates.
    """
    categories = CATEGORIES if categories is None else tuple(categories)
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown BFCL categories {unknown}; choose from {list(CATEGORIES)}")
    root = data_dir()
    items = []
    for cat in categories:
        rows = _read_jsonl(root / f"BFCL_v4_{cat}.json")[:limit]
        answers = {}
        if cat in AST_CATEGORIES:
            truth = _read_jsonl(root / "possible_answer" / f"BFCL_v4_{cat}.json")
            answers = {r["id"]: r["ground_truth"] for r in truth}
        for row in rows:
            if len(row["question"]) != 1:
                raise ValueError(f"{row['id']}: {len(row['question'])} turns; single-turn categories have one")
            items.append(BfclItem(id=row["id"], category=cat, query=join_messages(row["question"][0]),
                                  tools=[to_tool(f, hint) for f in row["function"]],
                                  functions=row["function"],
                                  answer=answers[row["id"]] if cat in AST_CATEGORIES else None))
    return items


# ----------------------------------------------------------------------------- scoring

@functools.cache
def _checker() -> types.ModuleType:
    """BFCL's ast_checker module, imported with a stand-in for bfcl_eval.constants.model_config.

    The real module imports every model handler (openai, anthropic, ...) only so that convert_func_name can
    read MODEL_CONFIG_MAPPING[model].underscore_to_dot. The stand-in sits in sys.modules just for the import.
    """
    name = "bfcl_eval.constants.model_config"
    shim = types.ModuleType(name)
    shim.MODEL_CONFIG_MAPPING = {MODEL_NAME: types.SimpleNamespace(underscore_to_dot=False)}
    saved = sys.modules.get(name)
    sys.modules[name] = shim
    try:
        module = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"{e}; install the checker with: pip install --no-deps bfcl-eval==2026.3.23") from e
    finally:
        if saved is None:
            del sys.modules[name]
        else:
            sys.modules[name] = saved
    if MODEL_NAME not in module.MODEL_CONFIG_MAPPING:
        raise RuntimeError("bfcl_eval's ast_checker was imported before needle.eval.bfcl with the real model "
                           "config; import needle.eval.bfcl first")
    return module


def _to_bfcl_output(calls: list[dict] | None) -> list[dict] | None:
    """Our calls -> BFCL's decoded form [{name: {param: value}}]; None when they are not well-formed calls."""
    if not isinstance(calls, list):
        return None
    out = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return None
        args = call.get("arguments", {})
        if not isinstance(args, dict):
            return None
        out.append({call["name"]: args})
    return out


def _errors_text(errors: list) -> str:
    # Parallel checks give a summary line, then one dict per model call tried.
    return " | ".join(e if isinstance(e, str) else json.dumps(e, default=str) for e in errors)[:600]


def score(item: BfclItem, calls: list[dict] | None) -> tuple[bool, str]:
    """(correct, reason) for one item; `calls` as [{"name", "arguments"}], None when the output did not parse.

    Follows BFCL's rules: irrelevance = no call (an undecodable output counts as none, as BFCL's
    relevance runner does); live_relevance = at least one call; AST categories = BFCL's ast_checker.
    """
    output = _to_bfcl_output(calls)
    if item.category in ("irrelevance", "live_irrelevance", "live_relevance"):
        made_call = bool(output)
        if item.category == "live_relevance":
            return made_call, "" if made_call else "no call where one was expected"
        return not made_call, "called a function where none fits" if made_call else ""
    if output is None:
        return False, "output did not parse as calls"
    checker = _checker()
    try:
        result = checker.ast_checker(item.functions, output, item.answer, checker.Language.PYTHON,
                                     item.category, MODEL_NAME)
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as e:
        # The checker assumes decoder-shaped values; a malformed call can trip it. BFCL would crash; we fail it.
        return False, f"checker raised {type(e).__name__}: {e}"
    if result["valid"]:
        return True, ""
    return False, f"{result.get('error_type', 'invalid')}: {_errors_text(result.get('error', []))}"


def aggregates(per_category: dict[str, tuple[int, int]]) -> dict:
    """BFCL v4's single-turn summaries (0..1) from (correct, total) per category; "categories" holds each accuracy.

    non_live_ast: unweighted mean of simple_python, multiple, parallel, parallel_multiple (BFCL's "simple"
    column also averages Java and JavaScript in); live_ast: count-weighted over the four live AST categories;
    irrelevance: unweighted mean of irrelevance and live_irrelevance; overall: mean of those three (BFCL's
    overall weights them 10/10/10 beside multi-turn and agentic). A summary is None if a part is missing;
    BFCL instead counts a missing category as 0 and shows "N/A".
    """
    acc = {c: (ok / n if n else 0.0) for c, (ok, n) in per_category.items()}
    out: dict = {"categories": acc}

    def have(cats):
        return all(c in per_category and per_category[c][1] > 0 for c in cats)

    out["non_live_ast"] = sum(acc[c] for c in NON_LIVE_AST) / len(NON_LIVE_AST) if have(NON_LIVE_AST) else None
    out["live_ast"] = (sum(per_category[c][0] for c in LIVE_AST) / sum(per_category[c][1] for c in LIVE_AST)
                       if have(LIVE_AST) else None)
    out["irrelevance"] = sum(acc[c] for c in IRRELEVANCE) / len(IRRELEVANCE) if have(IRRELEVANCE) else None
    parts = [out["non_live_ast"], out["live_ast"], out["irrelevance"]]
    out["overall"] = sum(parts) / 3 if None not in parts else None
    return out


# ----------------------------------------------------------------------------- contamination guard

# Every BFCL query counts, short ones too ("hello", "Tell me a joke"): the generator refuses them all
# through a hashed blocklist (pools/eval_blocklist.json, scripts/build_eval_blocklist.py).
MIN_QUERY_WORDS = 1


def _norm(text: str) -> str:
    return normalise_query(text)


@functools.cache
def _bfcl_index() -> tuple[dict, dict]:
    """({(name, description): id}, {query: id}) over CATEGORIES, normalised; descriptions without the hint."""
    functions, queries = {}, {}
    for item in load_bfcl(hint=False):
        queries.setdefault(_norm(item.query), item.id)
        for f in item.functions:
            functions.setdefault((_norm(f["name"]), _norm(f.get("description", ""))), item.id)
    return functions, queries


def _tool_dicts(tools) -> list[dict]:
    if isinstance(tools, str):
        tools = json.loads(tools)
    if isinstance(tools, dict):
        tools = [tools]
    out = []
    for t in tools or []:
        if not isinstance(t, dict):  # a needle.data.schema.Tool
            t = {"name": t.name, "description": t.description}
        out.append(t["function"] if t.get("type") == "function" and isinstance(t.get("function"), dict) else t)
    return out


def bfcl_contamination(examples: Iterable, min_query_words: int = MIN_QUERY_WORDS) -> list[str]:
    """Problems in training examples (dicts with query/tools, or Example objects) that overlap BFCL.

    Flags a tool whose name and description both equal a BFCL function's, and a query of at least
    `min_query_words` words equal to a BFCL query (both compared lowercased with whitespace collapsed).
    """
    functions, queries = _bfcl_index()
    problems = []
    for i, ex in enumerate(examples):
        query = ex["query"] if isinstance(ex, dict) else ex.query
        tools = ex.get("tools") if isinstance(ex, dict) else ex.tools
        q = _norm(query) if isinstance(query, str) else ""
        if q in queries and len(q.split()) >= min_query_words:
            problems.append(f"example {i}: query equals BFCL query {queries[q]}")
        for t in _tool_dicts(tools):
            key = (_norm(str(t.get("name", ""))), _norm(str(t.get("description", ""))))
            if key in functions:
                problems.append(f"example {i}: tool {t.get('name')!r} is BFCL function from {functions[key]}")
    return problems
