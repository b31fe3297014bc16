"""`needle data stats`: counts, duplicates, the value-masked uniqueness measure and value variety."""
import json

from needle.data.build import write_dataset
from needle.data.generator import GenConfig
from needle.data.schema import parse_example
from needle.data.stats import collect, format_report, masked_query, string_values
from needle.tokenizer import Tokenizer, default_tokenizer_path


def test_masking_removes_values_and_digits():
    ex = parse_example({"query": "Text Ana Lopez: running 15 minutes late", "tools": [
        {"name": "send", "description": "", "parameters": {"type": "object", "properties": {
            "to": {"type": "string"}, "body": {"type": "string"}}}}],
        "answers": [{"name": "send", "arguments": {"to": "Ana Lopez", "body": "running 15 minutes late"}}]})
    assert masked_query(ex) == "text <v>: <v>"


def test_stats_on_generated_file(tmp_path):
    path = tmp_path / "d.jsonl"
    write_dataset(GenConfig(seed=9), 400, path, workers=1, progress_bar=False)
    with open(path, "a") as f:
        f.write(json.dumps({"query": "dup", "tools": [], "answers": []}) + "\n")
        f.write(json.dumps({"query": "dup", "tools": [], "answers": []}) + "\n")
        f.write("{broken\n")
    s = collect(path, Tokenizer.from_file(default_tokenizer_path()), token_sample=50)
    assert s["examples"] == 402 and s["invalid"] == 1 and len(s["lengths"]) == 50
    assert s["types"]["no call (no tools)"] == 2 and s["duplicate_rate"] >= 1 / 402
    assert 0.3 < s["unique_masked_share"] <= 1
    assert s["string_values"] > 200 and s["distinct_string_values"] <= s["string_values"]
    assert 0 < s["top100_value_share"] <= 1 and len(s["top_values"]) == 10
    report = format_report(s)
    assert "call type" in report and "unique after masking" in report and "invalid:" in report
    assert "string argument values" in report


def test_string_values_include_nested_ones():
    ex = parse_example({"query": "q", "tools": [{"name": "f", "description": "", "parameters": {}}], "answers": [
        {"name": "f", "arguments": {"a": "x", "n": 3, "b": ["y", {"c": "z"}], "t": True}}]})
    assert sorted(string_values(ex)) == ["x", "y", "z"]
