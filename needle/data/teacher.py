"""Teacher distillation: ask a large LLM (OpenAI-compatible or Gemini) for tool-calling examples, keep the sound ones.

`distill` writes examples for given tools (or tools the teacher invents per domain); `paraphrase`
rewrites the queries of an existing file. Both append to the output one flushed line per accepted
example, so a rerun resumes where a crash stopped. Every item is vetted (see grounding.py) and each
rejection is counted by reason in the DistillReport. Prompts live in pools/teacher/.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from tqdm import tqdm

from needle.data.grounding import (Rejected, check_query, extract_invented, extract_items, is_grounded, leaf_values,
                                   query_key, vet_example)
from needle.data.schema import Call, DataError, Example, Tool, open_text, parse_example, parse_tools
from needle.data.teacher_client import Attempts, Streaks, Teacher, TeacherError, reply_budget, run_concurrently

__all__ = ["DistillReport", "TeacherError", "distill", "paraphrase"]

PROMPTS = Path(__file__).with_name("pools") / "teacher"
MAX_OFFERED_TOOLS = 10
INVENTED_TOOLS = (3, 8)


@dataclass
class DistillReport:
    """What a run did. Rejection reasons: bad_json, bad_tools, empty_query, too_long,
    wrong_answer_for_call_type, unknown_tool, invalid_arguments, ungrounded_value, duplicate_query,
    and for paraphrase also missing (no rewrite returned) and unchanged (rewrite same as the original)."""
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    skipped_existing: int = 0
    failed_batches: int = 0
    interrupted: bool = False

    def add(self, attempts: Attempts) -> None:
        self.requests += attempts.requests
        self.retries += attempts.retries
        if attempts.reply is None:
            self.failed_batches += 1
        else:
            self.prompt_tokens += attempts.reply.prompt_tokens
            self.completion_tokens += attempts.reply.completion_tokens

    def summary(self) -> str:
        rows = [("accepted", self.accepted), ("already in output", self.skipped_existing),
                ("rejected", sum(self.rejected.values()))]
        rows += [(f"  {reason}", n) for reason, n in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))]
        rows += [("requests", self.requests), ("retries", self.retries), ("failed batches", self.failed_batches),
                 ("prompt tokens", self.prompt_tokens), ("completion tokens", self.completion_tokens)]
        width, numw = max(len(k) for k, _ in rows), max(len(f"{v:,}") for _, v in rows)
        return "\n".join(f"{k:<{width}}  {v:>{numw},}" for k, v in rows)


@dataclass
class _Job:
    system: str
    user: str
    tools: list[Tool] | None = None  # None: the teacher invents them in its reply
    originals: list = field(default_factory=list)  # paraphrase: the _Input records asked about


@dataclass
class _Input:
    digest: str
    line: int
    record: dict
    example: Example



def _read(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8").strip()


def _call_types() -> dict:
    return {k: v for k, v in json.loads(_read("call_types.json")).items() if not k.startswith("_")}


def _load_tools(path: str) -> list[Tool]:
    try:
        with open(path, encoding="utf-8") as f:
            tools = parse_tools(json.load(f), where=str(path))
    except (OSError, json.JSONDecodeError, DataError) as e:
        raise TeacherError(f"bad tools file {path}: {e}") from None
    if not tools:
        raise TeacherError(f"bad tools file {path}: it holds no tools")
    return tools


def _mend_last_line(path: Path) -> None:
    """A crash mid-write can leave half a line at the end: cut it. A whole record missing only its
    newline (a hand-edited file) gets the newline instead, so appending stays valid JSONL."""
    with open(path, "rb+") as f:
        end = pos = f.seek(0, 2)
        while pos > 0:
            step = min(pos, 1 << 16)
            f.seek(pos - step)
            chunk = f.read(step)
            if pos == end and chunk.endswith(b"\n"):
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0 or step == pos:
                start = pos - step + newline + 1  # 0 when the file holds no newline at all
                break
            pos -= step
        else:
            return  # empty file
        f.seek(start)
        try:
            json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            f.truncate(start)
            return
        f.write(b"\n")


def _existing(path: str) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    _mend_last_line(p)
    records = []
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TeacherError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or move it to resume") from None
    return records


class _Sink:
    """Appends accepted examples (one flushed line each), dedups on the normalised query, counts."""

    def __init__(self, out, report: DistillReport, existing: list[dict], bar: tqdm | None, limit: int | None = None):
        self.out, self.report, self.bar, self.limit = out, report, bar, limit
        self.seen = {query_key(r["query"]) for r in existing if isinstance(r, dict) and isinstance(r.get("query"), str)}

    @property
    def full(self) -> bool:
        return self.limit is not None and self.report.accepted >= self.limit

    def reject(self, reason: str, n: int = 1) -> None:
        if n:
            self.report.rejected[reason] += n

    def accept(self, query: str, tools: list[Tool], calls: list[Call], meta: dict) -> bool:
        key = query_key(query)
        if key in self.seen:
            self.reject("duplicate_query")
            return False
        self.seen.add(key)
        record = {**Example(query, tools, calls).to_dict(), "meta": meta}
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()
        self.report.accepted += 1
        if self.bar is not None:
            self.bar.update(1)
        return True



def _mix(rng: random.Random, call_types: dict, n: int) -> str:
    names = list(call_types)
    counts = Counter(rng.choices(names, weights=[call_types[k]["share"] for k in names], k=n))
    return "\n".join(f"- {counts[k]} x {k}: {call_types[k]['describe']}" for k in names if counts[k])


def _distill_jobs(rng: random.Random, tools: list[Tool] | None, domains: list[str], batch_size: int) -> Iterator[_Job]:
    system, rules, call_types = _read("system.txt"), _read("rules.txt"), _call_types()
    examples, invent = Template(_read("examples.txt")), Template(_read("invent.txt"))
    while True:
        mix = _mix(rng, call_types, batch_size)
        if tools is None:
            user = invent.substitute(k=rng.randint(*INVENTED_TOOLS), domain=rng.choice(domains), n=batch_size,
                                     mix=mix, rules=rules)
            yield _Job(system, user)
        else:
            offered = rng.sample(tools, rng.randint(1, min(MAX_OFFERED_TOOLS, len(tools))))
            listing = json.dumps([t.to_dict() for t in offered], indent=1, ensure_ascii=False)
            yield _Job(system, examples.substitute(tools=listing, n=batch_size, mix=mix, rules=rules), offered)


def _distill_items(job: _Job, text: str, sink: _Sink) -> tuple[list[Tool] | None, list]:
    if job.tools is not None:
        items, bad = extract_items(text)
        sink.reject("bad_json", bad)
        return job.tools, items
    raw_tools, items, bad = extract_invented(text)
    sink.reject("bad_json", bad)
    try:
        tools = parse_tools(raw_tools, path="tools")
    except DataError:
        tools = []
    if not tools:
        sink.reject("bad_tools")
        return None, []
    return tools, items


def _take_distilled(job: _Job, attempts: Attempts, sink: _Sink, streaks: Streaks, meta: dict,
                    call_counts: dict) -> None:
    sink.report.add(attempts)
    if attempts.reply is None:
        streaks.failed_batch(attempts.error)
        return
    tools, items = _distill_items(job, attempts.reply.text, sink)
    accepted = 0
    for item in items:
        if sink.full:
            break
        try:
            query, call_type, calls = vet_example(item, tools, call_counts)
        except Rejected as r:
            sink.reject(r.reason)
            continue
        accepted += sink.accept(query, [] if call_type == "no_tools" else tools, calls, {**meta, "call_type": call_type})
    streaks.answered(accepted, sink.report.rejected)


def _check_run_args(batch_size: int, concurrency: int) -> None:
    if batch_size < 1 or concurrency < 1:
        raise ValueError(f"batch_size and concurrency must be >= 1, got {batch_size} and {concurrency}")


def distill(*, teacher: str, model: str, output: str, num_samples: int, tools_path: str | None = None,
            base_url: str | None = None, api_key_env: str | None = None, batch_size: int = 25,
            concurrency: int = 4, requests_per_minute: float | None = None, temperature: float = 1.0,
            seed: int = 0, invent_domains: list[str] | None = None, timeout: float = 60.0,
            max_retries: int = 5, progress: bool = True, backoff_base: float = 1.0) -> DistillReport:
    """Ask the teacher for examples until `output` holds `num_samples`; resumes from what it already holds.

    Each request offers a seeded random 1-10 of the tools in `tools_path` (or asks the teacher to invent
    3-8 tools for one of `invent_domains`) and a call-type mix; see DistillReport for rejection reasons.
    """
    _check_run_args(batch_size, concurrency)
    client = Teacher(teacher, model, base_url=base_url, api_key_env=api_key_env, timeout=timeout,
                     temperature=temperature, max_retries=max_retries, backoff_base=backoff_base,
                     requests_per_minute=requests_per_minute, max_tokens=reply_budget(batch_size))
    tools = _load_tools(tools_path) if tools_path else None
    domains = invent_domains or json.loads(_read("domains.json"))["domains"]
    existing = _existing(output)
    report = DistillReport(skipped_existing=len(existing))
    needed = num_samples - len(existing)
    if needed <= 0:
        return report
    # The seed moves with the resume point so a rerun doesn't repeat the prompts of the first run.
    rng = random.Random(seed * 1_000_003 + len(existing))
    call_counts = {k: (v["calls"][0], v["calls"][1]) for k, v in _call_types().items()}
    meta = {"source": "teacher", "teacher": model}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a", encoding="utf-8") as out, \
            tqdm(total=num_samples, initial=len(existing), disable=not progress, unit="ex") as bar:
        sink, streaks = _Sink(out, report, existing, bar, limit=needed), Streaks(client)
        try:
            run_concurrently(_distill_jobs(rng, tools, domains, batch_size), client,
                             lambda job, attempts: _take_distilled(job, attempts, sink, streaks, meta, call_counts),
                             concurrency, lambda in_flight: report.accepted + in_flight * batch_size >= needed)
        except KeyboardInterrupt:  # every accepted example is already on disk: report, and let a rerun resume
            report.interrupted = True
    return report



def _read_inputs(path: str) -> list[_Input]:
    inputs = []
    try:
        with open_text(path) as f:  # .jsonl or .jsonl.gz
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}", "<line>", f"not valid JSON ({e.msg})") from None
                example = parse_example(record, where=f"{path}:{lineno}")
                canonical = json.dumps(example.to_dict(), sort_keys=True, ensure_ascii=False)
                inputs.append(_Input(hashlib.sha1(canonical.encode()).hexdigest()[:16], lineno, record, example))
    except (OSError, DataError) as e:
        raise TeacherError(f"bad input file: {e}") from None
    return inputs


def _kept_values(example: Example) -> list:
    """Argument values that the original query grounds: a rewrite must keep every one of them."""
    out = []
    for call in example.answers:
        for value in leaf_values(call.arguments):
            if value is not None and not isinstance(value, bool) and is_grounded(value, example.query) \
                    and value not in out:
                out.append(value)
    return out


def _paraphrase_jobs(todo: list[_Input], batch_size: int) -> Iterator[_Job]:
    system, template = _read("system.txt"), Template(_read("paraphrase.txt"))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        lines = []
        for i, inp in enumerate(chunk, 1):
            keep = ", ".join(json.dumps(str(v), ensure_ascii=False) for v in _kept_values(inp.example))
            lines.append(f"{i}. {json.dumps(inp.example.query, ensure_ascii=False)}\n   keep: {keep or '(nothing)'}")
        yield _Job(system, template.substitute(n=len(chunk), items="\n".join(lines)), originals=chunk)


def _rewrites(text: str, n: int, sink: _Sink) -> dict[int, object]:
    items, bad = extract_items(text, first_key="id")
    sink.reject("bad_json", bad)
    if items and all(isinstance(x, str) for x in items):  # a bare list of strings, in order
        return dict(enumerate(items[:n], 1))
    out = {}
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        if isinstance(ident, str) and ident.strip().isdigit():
            ident = int(ident)
        if isinstance(ident, int) and 1 <= ident <= n and ident not in out:
            out[ident] = item.get("query")
        else:
            sink.reject("bad_json")
    return out


def _vet_rewrite(new: object, inp: _Input) -> str:
    query = check_query(new)
    if query_key(query) == query_key(inp.example.query):
        raise Rejected("unchanged")
    lost = [v for v in _kept_values(inp.example) if not is_grounded(v, query)]
    if lost:
        raise Rejected("ungrounded_value", repr(lost[0]))
    return query


def _take_paraphrased(job: _Job, attempts: Attempts, sink: _Sink, streaks: Streaks, model: str, bar: tqdm) -> None:
    sink.report.add(attempts)
    bar.update(len(job.originals))  # the bar counts inputs handled, accepted or not
    if attempts.reply is None:
        streaks.failed_batch(attempts.error)
        return
    rewrites = _rewrites(attempts.reply.text, len(job.originals), sink)
    accepted = 0
    for i, inp in enumerate(job.originals, 1):
        if i not in rewrites:
            sink.reject("missing")
            continue
        try:
            query = _vet_rewrite(rewrites[i], inp)
        except Rejected as r:
            sink.reject(r.reason)
            continue
        old_meta = inp.record.get("meta") if isinstance(inp.record.get("meta"), dict) else {}
        meta = {**old_meta, "source": "paraphrase", "teacher": model, "paraphrase_of": inp.digest,
                "input_line": inp.line}
        accepted += sink.accept(query, inp.example.tools, inp.example.answers, meta)
    streaks.answered(accepted, sink.report.rejected)


def paraphrase(*, teacher: str, model: str, input_path: str, output: str, base_url: str | None = None,
               api_key_env: str | None = None, batch_size: int = 25, concurrency: int = 4,
               requests_per_minute: float | None = None, temperature: float = 0.9, timeout: float = 60.0,
               max_retries: int = 5, progress: bool = True, backoff_base: float = 1.0) -> DistillReport:
    """Rewrite each example's query in `input_path` (at most one rewrite each), keeping tools and answers.

    A rewrite is kept only if it differs from the original and still contains every argument value the
    original query contained. Inputs already rewritten in `output` (meta.paraphrase_of) are skipped.
    """
    _check_run_args(batch_size, concurrency)
    client = Teacher(teacher, model, base_url=base_url, api_key_env=api_key_env, timeout=timeout,
                     temperature=temperature, max_retries=max_retries, backoff_base=backoff_base,
                     requests_per_minute=requests_per_minute, max_tokens=reply_budget(batch_size))
    inputs, existing = _read_inputs(input_path), _existing(output)
    done = {r["meta"].get("paraphrase_of") for r in existing if isinstance(r, dict) and isinstance(r.get("meta"), dict)}
    todo = [inp for inp in inputs if inp.digest not in done]
    report = DistillReport(skipped_existing=len(inputs) - len(todo))
    if not todo:
        return report
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a", encoding="utf-8") as out, tqdm(total=len(todo), disable=not progress, unit="ex") as bar:
        sink, streaks = _Sink(out, report, existing, None), Streaks(client)
        try:
            run_concurrently(_paraphrase_jobs(todo, batch_size), client,
                             lambda job, attempts: _take_paraphrased(job, attempts, sink, streaks, model, bar),
                             concurrency, lambda in_flight: False)
        except KeyboardInterrupt:  # every accepted example is already on disk: report, and let a rerun resume
            report.interrupted = True
    return report
