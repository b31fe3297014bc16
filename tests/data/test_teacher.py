"""Teacher distillation against a real local HTTP server speaking the OpenAI and Gemini protocols.

The server is scripted per test: `script(prompt, n)` returns the reply text (or a Resp with a status,
headers and delay) for the n-th request. Nothing inside needle is patched.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from needle.data.grounding import coerce_numerals, extract_invented, extract_items, is_grounded, query_key
from needle.data.schema import parse_example
from needle.data.teacher import DistillReport, TeacherError, distill, paraphrase
from needle.data.teacher_client import RateLimiter, parse_retry_after

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather forecast for a city.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
               "days": {"type": "integer", "minimum": 1}}, "required": ["city"]}}}
TIMER = {"name": "set_timer", "description": "Start a countdown timer.",
         "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]}}
TEXT = {"name": "send_text", "description": "Send a text message.",
        "parameters": {"type": "object", "properties": {"phone": {"type": "string"}, "body": {"type": "string"}},
                       "required": ["phone", "body"]}}
USAGE = (11, 7)  # prompt, completion tokens the server reports for every successful reply
FAST = {"backoff_base": 0.001, "timeout": 5.0, "progress": False, "concurrency": 1}


@dataclass
class Resp:
    content: str = ""
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        gemini = ":generateContent" in self.path
        if not (gemini or self.path.endswith("/chat/completions")):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        prompt = "\n".join(_texts(body))
        with fake.lock:
            n = len(fake.prompts)
            fake.prompts.append(prompt)
            fake.paths.append(self.path)
        resp = fake.script(prompt, n)
        resp = Resp(resp) if isinstance(resp, str) else resp
        time.sleep(resp.delay)
        if resp.status != 200:
            return self._send(resp.status, {"error": {"code": resp.status, "message": "scripted failure",
                                                      "status": "UNAVAILABLE"}}, resp.headers)
        if gemini:
            return self._send(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": resp.content}]},
                                                    "finishReason": "STOP", "index": 0}],
                                    "usageMetadata": {"promptTokenCount": USAGE[0], "candidatesTokenCount": USAGE[1],
                                                      "totalTokenCount": sum(USAGE)}})
        return self._send(200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": "m",
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": resp.content},
                                             "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1],
                                          "total_tokens": sum(USAGE)}})

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out first, on purpose
            pass


def _texts(obj) -> list[str]:
    if isinstance(obj, dict):
        return [t for k, v in obj.items() for t in ([v] if k in ("text", "content") and isinstance(v, str) else _texts(v))]
    if isinstance(obj, list):
        return [t for v in obj for t in _texts(v)]
    return []


class FakeTeacher:
    def __init__(self):
        self.script = good_reply
        self.prompts, self.paths, self.lock = [], [], threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = self.root + "/v1"


@pytest.fixture
def fake():
    server = FakeTeacher()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def tools_file(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([WEATHER, TIMER, TEXT]))
    return str(path)


def _offered(prompt: str) -> list[dict]:
    return json.loads(re.search(r"<tools>\s*(.*?)\s*</tools>", prompt, re.DOTALL).group(1))


def _fill(schema: dict, tag: str, number: int):
    if "enum" in schema:
        return schema["enum"][0]
    return number if schema.get("type") in ("integer", "number") else f"{tag}"


def good_reply(prompt: str, n: int, per: int = 5) -> str:
    """`per` single calls on the offered tools plus one no-call item, every value quoted in its query."""
    tools, items = _offered(prompt), []
    for i in range(per):
        tool = tools[i % len(tools)]
        props, required = tool["parameters"]["properties"], tool["parameters"].get("required", [])
        args = {k: _fill(props[k], f"w{n}x{i}{k}", 100 + 10 * n + i) for k in required}
        query = f"please {tool['name'].replace('_', ' ')} " + " and ".join(str(v) for v in args.values())
        items.append({"query": query + f" (ref {n}-{i})", "call_type": "single",
                      "answers": [{"name": tool["name"], "arguments": args}]})
    items.append({"query": f"just chatting, nothing to do {n}", "call_type": "none", "answers": []})
    return json.dumps(items)


def _lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _run(fake, tmp_path, tools_file, **kw) -> DistillReport:
    args = {"teacher": "openai", "model": "teacher-m", "output": str(tmp_path / "out.jsonl"), "num_samples": 10,
            "tools_path": tools_file, "base_url": fake.url, "batch_size": 5, **FAST, **kw}
    return distill(**args)


# ---- distill over OpenAI chat completions -------------------------------------------------------

def test_distill_writes_valid_examples_and_sums_usage(fake, tmp_path, tools_file):
    report = _run(fake, tmp_path, tools_file, num_samples=30, concurrency=3)
    records = _lines(tmp_path / "out.jsonl")
    assert report.accepted == len(records) == 30
    for i, r in enumerate(records):
        parse_example(r, where=f"line {i}", validate=True)
        assert r["meta"]["source"] == "teacher" and r["meta"]["teacher"] == "teacher-m"
    assert {r["meta"]["call_type"] for r in records} == {"single", "none"}
    assert len({query_key(r["query"]) for r in records}) == 30
    assert report.requests == len(fake.prompts) and report.retries == 0
    assert (report.prompt_tokens, report.completion_tokens) == (USAGE[0] * report.requests, USAGE[1] * report.requests)
    assert all(re.search(r"^- \d+ x \w+: ", p, re.MULTILINE) and "<tools>" in p for p in fake.prompts)
    assert all(1 <= len(_offered(p)) <= 3 for p in fake.prompts)


def test_every_rejection_reason_is_counted(fake, tmp_path, tools_file):
    weather = str(tmp_path / "weather.json")
    (tmp_path / "weather.json").write_text(json.dumps([WEATHER]))

    def call(**args):
        return [{"name": "get_weather", "arguments": args}]

    bad = [
        {"query": "Book a taxi to Rome", "call_type": "single", "answers": [{"name": "book_taxi", "arguments": {}}]},
        {"query": "Weather in Lima for five days", "call_type": "single", "answers": call(city="Lima", days="five")},
        {"query": "Weather in Kyiv in kelvin", "call_type": "single", "answers": call(city="Kyiv", unit="kelvin")},
        {"query": "Weather in Quito", "call_type": "single", "answers": call()},
        {"query": "What's the weather like?", "call_type": "single", "answers": call(city="Berlin")},
        {"query": "Weather for 555 0199", "call_type": "single", "answers": call(city="+1 555 0100")},
        {"query": "   ", "call_type": "none", "answers": []},
        {"query": "x" * 20_001, "call_type": "none", "answers": []},
        {"query": "Weather in Rome", "call_type": "none", "answers": call(city="Rome")},
        {"query": "Weather in Bern", "call_type": "single", "answers": call(city="Bern") * 2},
    ]
    good = [
        {"query": "Weather in Paris for 3 days", "call_type": "single", "answers": call(city="Paris", days="3")},
        {"query": "is it raining in oslo, in fahrenheit", "call_type": "single",
         "answers": call(city="Oslo", unit="fahrenheit")},
        {"query": "Tell me a joke", "call_type": "none", "answers": []},
    ]
    dup = {"query": "weather in PARIS for 3 days!", "call_type": "single", "answers": call(city="Paris", days=3)}
    body = ",\n".join(json.dumps(x) for x in [*bad, good[0], dup, good[1]])
    reply = ("Sure! Here are your examples:\n```json\n[\n" + body + ',\n{"query": "broken, "answers": []},\n'
             + json.dumps(good[2]) + ',\n{"query": "Weather in Nice", "answers": [{"name": "get_weather", '
             '"arguments": {"city": "Nice",}}],},\n]\n```\nLet me know if you need more [1].')
    fake.script = lambda prompt, n: reply
    report = _run(fake, tmp_path, weather, num_samples=4)
    assert report.requests == 1 and report.accepted == 4
    assert report.rejected == Counter({"unknown_tool": 1, "invalid_arguments": 3, "ungrounded_value": 2,
                                       "empty_query": 1, "too_long": 1, "wrong_answer_for_call_type": 2,
                                       "duplicate_query": 1, "bad_json": 1})
    records = _lines(tmp_path / "out.jsonl")
    for r in records:
        parse_example(r, validate=True)
    assert records[0]["answers"][0]["arguments"] == {"city": "Paris", "days": 3}  # "3" coerced, schema says integer
    assert [r["meta"]["call_type"] for r in records] == ["single", "single", "none", "single"]


def test_retries_on_429_500_and_timeout_are_counted(fake, tmp_path, tools_file):
    script = {0: Resp(status=429, headers={"Retry-After": "0.2"}), 1: Resp(status=500), 2: Resp("[]", delay=1.5)}
    fake.script = lambda prompt, n: script.get(n) or good_reply(prompt, n)
    start = time.monotonic()
    report = _run(fake, tmp_path, tools_file, num_samples=5, timeout=0.4)
    assert time.monotonic() - start >= 0.2 + 0.4  # Retry-After honoured, then the slow reply timed out
    assert (report.requests, report.retries, report.failed_batches, report.accepted) == (4, 3, 0, 5)
    assert report.prompt_tokens == USAGE[0]  # only the one answered request counts


def test_a_batch_out_of_retries_is_counted_and_the_run_goes_on(fake, tmp_path, tools_file):
    fake.script = lambda prompt, n: Resp(status=503) if n < 3 else good_reply(prompt, n)
    report = _run(fake, tmp_path, tools_file, num_samples=5, max_retries=2)
    assert (report.requests, report.retries, report.failed_batches, report.accepted) == (4, 2, 1, 5)


def test_unreachable_server_and_refusals_raise(fake, tmp_path, tools_file):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(TeacherError, match="unreachable"):
        _run(fake, tmp_path, tools_file, base_url=dead, max_retries=1)
    fake.script = lambda prompt, n: Resp(status=401)
    with pytest.raises(TeacherError, match="401"):
        _run(fake, tmp_path, tools_file)
    assert len(fake.prompts) == 1


def test_resume_skips_existing_and_never_duplicates(fake, tmp_path, tools_file):
    out = tmp_path / "out.jsonl"
    first = _run(fake, tmp_path, tools_file, num_samples=10)
    assert first.accepted == 10 and first.skipped_existing == 0
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"query": "half a line from a cra')  # a crash mid-write
    fake.prompts.clear()  # the server starts over: its first replies repeat what run 1 already took
    second = _run(fake, tmp_path, tools_file, num_samples=20)
    records = _lines(out)
    assert second.skipped_existing == 10 and second.accepted == 10 and len(records) == 20
    assert len({query_key(r["query"]) for r in records}) == 20
    assert second.rejected["duplicate_query"] >= 1  # "just chatting ... 0" again: dedup saw run 1
    third = _run(fake, tmp_path, tools_file, num_samples=20)
    assert (third.skipped_existing, third.accepted, third.requests) == (20, 0, 0)


def test_missing_key_unknown_teacher_and_bad_tools(tmp_path, tools_file, monkeypatch):
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    common = {"model": "m", "output": str(tmp_path / "o.jsonl"), "num_samples": 1, "tools_path": tools_file}
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        distill(teacher="openai", **common)
    with pytest.raises(TeacherError, match="GEMINI_API_KEY"):
        distill(teacher="gemini", **common)
    with pytest.raises(TeacherError, match="MY_TEACHER_KEY"):
        distill(teacher="openai", base_url="http://127.0.0.1:9/v1", api_key_env="MY_TEACHER_KEY", **common)
    with pytest.raises(TeacherError, match="unknown teacher"):
        distill(teacher="claude", **common)
    (tmp_path / "bad.json").write_text('[{"name": "x", "parameters": {"type": "object", "properties": 3}}]')
    with pytest.raises(TeacherError, match="bad tools file"):
        distill(teacher="openai", base_url="http://127.0.0.1:9/v1", **{**common, "tools_path": str(tmp_path / "bad.json")})
    assert not (tmp_path / "o.jsonl").exists()


def test_invented_tools_when_no_tools_file(fake, tmp_path):
    def script(prompt, n):
        if n == 0:
            return json.dumps({"tools": "none today", "examples": []})
        tool = {"name": "feed_pet", "description": "Feed a pet.", "parameters": {"type": "object", "properties": {
            "pet": {"type": "string"}, "grams": {"type": "integer"}}, "required": ["pet", "grams"]}}
        examples = [{"query": f"feed Rex{n} {10 * n + i} grams", "call_type": "single",
                     "answers": [{"name": "feed_pet", "arguments": {"pet": f"Rex{n}", "grams": 10 * n + i}}]}
                    for i in range(3)]
        return "Here you go:\n" + json.dumps({"tools": [tool], "examples": examples})

    fake.script = script
    report = _run(fake, tmp_path, None, num_samples=4, invent_domains=["pets"])
    assert report.accepted == 4 and report.rejected == Counter({"bad_tools": 1})
    assert "pets" in fake.prompts[0] and "<tools>" not in fake.prompts[0]
    for r in _lines(tmp_path / "out.jsonl"):
        assert parse_example(r).tools[0].name == "feed_pet"


# ---- Gemini generateContent ---------------------------------------------------------------------

def test_gemini_path_retries_and_counts_usage(fake, tmp_path, tools_file, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    fake.script = lambda prompt, n: Resp(status=429, headers={"Retry-After": "0"}) if n == 0 else good_reply(prompt, n)
    report = _run(fake, tmp_path, tools_file, teacher="gemini", model="gemini-test", base_url=fake.root, num_samples=5)
    assert (report.accepted, report.requests, report.retries) == (5, 2, 1)
    assert (report.prompt_tokens, report.completion_tokens) == USAGE
    assert fake.paths[-1].endswith("/models/gemini-test:generateContent")


# ---- paraphrase ---------------------------------------------------------------------------------

def _example(query, *calls):
    return {"query": query, "tools": [WEATHER, TIMER, TEXT],
            "answers": [{"name": name, "arguments": args} for name, args in calls]}


def test_paraphrase_keeps_values_and_resumes(fake, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "para.jsonl"
    inputs = [_example("Weather in Paris for 3 days", ("get_weather", {"city": "Paris", "days": 3})),
              _example("Set a timer for 10 minutes", ("set_timer", {"minutes": 10})),
              _example("Weather in Oslo", ("get_weather", {"city": "Oslo"})),
              _example("Text 555-123-4567 saying running late", ("send_text", {"phone": "5551234567", "body": "running late"}))]
    src.write_text("".join(json.dumps(x) + "\n" for x in inputs))
    fake.script = lambda prompt, n: "```json\n" + json.dumps([
        {"id": 1, "query": "Could you give me the Paris forecast for the next 3 days?"},
        {"id": 2, "query": "Start a countdown timer please"},  # lost the 10
        {"id": 3, "query": "weather in oslo!"}]) + "\n```"
    args = {"teacher": "openai", "model": "teacher-m", "input_path": str(src), "output": str(out),
            "base_url": fake.url, **FAST}
    report = paraphrase(**args)
    assert report.accepted == 1 and report.rejected == Counter({"ungrounded_value": 1, "unchanged": 1, "missing": 1})
    assert '"Paris", "3"' in fake.prompts[0] and "4 user requests" in fake.prompts[0]
    (rec,) = _lines(out)
    assert rec["query"].startswith("Could you") and rec["answers"] == inputs[0]["answers"]
    assert parse_example(rec).tools == parse_example(inputs[0]).tools and rec["meta"]["input_line"] == 1
    fake.script = lambda prompt, n: json.dumps([{"id": 1, "query": "10 minutes on the timer, thanks"},
                                                {"id": 2, "query": "How is Oslo looking?"},
                                                {"id": 3, "query": "send 555 123 4567 a text: running late"}])
    again = paraphrase(**args)
    assert again.skipped_existing == 1 and again.accepted == 3 and "3 user requests" in fake.prompts[-1]
    assert len(_lines(out)) == 4


# ---- the pure pieces ----------------------------------------------------------------------------

@pytest.mark.parametrize("value,query,ok", [
    ("New York", "weather in new   york please", True), ("Boston", "weather in new york", False),
    ("+1 (555) 123-4567", "call 1 555 123 4567", True), ("555-123-4568", "call 555 123 4567", False),
    (21, "twenty-one apples", True), (21, "21 apples", True), (2, "12 apples", False), (1000, "1,000 apples", True),
    (2.5, "2.5 kg", True), (5, "5.5 kg", False), (True, "anything", True),
    ("2025-05-03", "on May 3rd", True), ("2025-05-03", "on the 3rd of may", True), ("2025-05-03", "tomorrow", False),
    ("15:30", "at 3:30 pm", True), ("15:00", "at 3pm", True), ("12:00", "at noon", True), ("16:30", "at 3:30", False),
    ("2025-05-03T15:30:00", "May 3 at 15:30", True),
])
def test_grounding(value, query, ok):
    assert is_grounded(value, query) is ok


def test_json_extraction_and_coercion():
    assert extract_items('{"examples": [{"query": "a", "answers": []}]} and more prose') == (
        [{"query": "a", "answers": []}], 0)
    assert extract_items("no json at all") == ([], 1)
    items, bad = extract_items('[{"query": "a", "answers": []}, {"query": "b" "answers"}, {"query": "c", "answers": [],}')
    assert [x["query"] for x in items] == ["a", "c"] and bad == 1
    tools, items, bad = extract_invented('{"tools": [{"name": "t"}], "examples": [{"query": "q", "answers": []}, {"query": }')
    assert tools == [{"name": "t"}] and len(items) == 1 and bad == 1
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}, "x": {"type": "number"}}}
    assert coerce_numerals({"n": "5", "s": "5", "x": "2.5"}, schema) == {"n": 5, "s": "5", "x": 2.5}
    assert coerce_numerals({"n": "5 min"}, schema) == {"n": "5 min"}


def test_summary_retry_after_and_rate_limit():
    report = DistillReport(accepted=1234, rejected=Counter({"bad_json": 3, "ungrounded_value": 12}), requests=50)
    lines = report.summary().splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[0].startswith("accepted") and "1,234" in lines[0]
    assert lines[3].split() == ["ungrounded_value", "12"]
    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    limiter, start = RateLimiter(1200), time.monotonic()  # one start every 50 ms
    for _ in range(4):
        limiter.wait()
    assert time.monotonic() - start >= 0.14


def test_cli_distils_through_the_local_server(fake, tmp_path, tools_file):
    import os
    import subprocess
    import sys
    out = tmp_path / "cli.jsonl"
    cmd = [sys.executable, "-m", "needle.cli", "generate-data", "--teacher", "openai", "--model", "m",
           "--base-url", fake.url, "--tools", tools_file, "--num-samples", "8", "--output", str(out),
           "--batch-size", "5", "--concurrency", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stdout and len(_lines(out)) == 8
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    r = subprocess.run(cmd[:7] + cmd[9:], capture_output=True, text=True, timeout=120, env=env)  # no --base-url
    assert r.returncode == 2 and "OPENAI_API_KEY" in r.stderr and "Traceback" not in r.stderr
