"""The `needle` command as a user runs it: real subprocesses, real files, real stdin/stdout."""
import json
import subprocess

import pytest

from needle.cli import COMMANDS


def needle(*args, input=None):
    return subprocess.run(["needle", *args], input=input, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command):
    res = needle(command, "--help")
    assert res.returncode == 0 and "usage: needle" in res.stdout and len(res.stdout) > 100


def test_info_prints_parameter_count():
    assert "params: 26233372" in needle("info", "--preset", "26m").stdout
    assert "params: 26315421" in needle("info", "--preset", "26m", "--retrieval-head").stdout


def test_info_reads_a_checkpoint(tiny_checkpoint):
    out = needle("info", "--checkpoint", tiny_checkpoint).stdout
    assert "d_model: 128" in out and "params: " in out


def test_missing_checkpoint_is_one_line_error(tmp_path, tools):
    f = tmp_path / "tools.json"
    f.write_text(json.dumps(tools))
    res = needle("run", "weather in Oslo", "--tools", str(f), "--checkpoint", str(tmp_path / "nope"))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "checkpoint not found" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("content, message", [
    (None, "tools file not found"),
    ("[{oops", "not valid JSON"),
    ('[{"name": "x", "parameters": {"type": "object", "properties": {"a": {"type": "banana"}}}}]', "unknown type"),
    ('{"description": "no name"}', "name"),
])
def test_bad_tools_file_is_one_line_error(tmp_path, tiny_checkpoint, content, message):
    f = tmp_path / "tools.json"
    if content is not None:
        f.write_text(content)
    res = needle("run", "hello", "--tools", str(f), "--checkpoint", tiny_checkpoint)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_run_prints_a_json_list(tmp_path, tiny_checkpoint, tools):
    f = tmp_path / "tools.json"
    f.write_text(json.dumps(tools))
    res = needle("run", "set a timer for 5 minutes", "--tools", str(f), "--checkpoint", tiny_checkpoint)
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)


def test_predict_writes_exactly_one_line_per_input(tiny_checkpoint, tools):
    lines = [json.dumps({"query": "weather in Oslo?", "tools": tools}), "{not json", json.dumps({"query": "", "tools": []}),
             "", json.dumps({"query": "ünïcödé 😀", "tools": json.dumps(tools)}), json.dumps([1, 2]),
             json.dumps({"query": "no tools at all"})]
    res = needle("predict", "--checkpoint", tiny_checkpoint, "--batch-size", "2", input="\n".join(lines))
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert len(out) == len(lines)
    assert all(isinstance(json.loads(o), list) for o in out)
    assert json.loads(out[1]) == [] and "stdin:2" in res.stderr and "Traceback" not in res.stderr


def test_run_without_grammar_still_prints_a_list(tmp_path, tiny_checkpoint, tools):
    f = tmp_path / "tools.json"
    f.write_text(json.dumps(tools))
    res = needle("run", "weather in Oslo", "--tools", str(f), "--checkpoint", tiny_checkpoint, "--no-grammar",
                 "--weights", "fp32")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []  # random weights write no JSON without the grammar: no calls
    assert "did not parse" in res.stderr or "token limit" in res.stderr


def test_bench_json_reports_every_figure():
    res = needle("bench", "--preset", "tiny", "--threads", "1", "--repeats", "2", "--json")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    r = record["results"][0]
    assert record["model"] == "random tiny" and r["threads"] == 1 and r["weights"] == "int8"
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "effective_output_tokens_per_s", "e2e_ms_p50",
                "e2e_ms_p90", "naive_ms", "speedup_vs_naive", "batch32_queries_per_s", "peak_rss_mib"):
        assert r[key] > 0, key
    assert r["forced_tokens"] + r["decoder_calls"] <= r["output_tokens"] + 1  # jump-forward saved steps


def test_bench_rejects_bad_threads():
    res = needle("bench", "--preset", "tiny", "--threads", "0")
    assert res.returncode != 0 and "--threads" in res.stderr and "Traceback" not in res.stderr
