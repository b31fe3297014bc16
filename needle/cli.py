"""The `needle` command: a dict of typed functions; each one's signature and docstring are its help.

Heavy imports (torch, the model) happen inside the commands, so `needle --help` is instant. Expected
failures (missing checkpoint, bad tools file, malformed input) end in one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import select
import shlex
import sys
from pathlib import Path

from needle.hardware import describe


def _die(msg: str) -> None:
    print(f"needle: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _load_tools_file(path: str):
    from needle.data.schema import DataError, parse_tools
    p = Path(path)
    if not p.is_file():
        _die(f"tools file not found: {p}")
    try:
        return parse_tools(json.loads(p.read_text(encoding="utf-8")), where=str(p))
    except json.JSONDecodeError as e:
        _die(f"{p}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})")
    except DataError as e:
        _die(str(e))


def info(preset: str = "26m", checkpoint: str = "", retrieval_head: bool = False) -> None:
    """Print a model configuration and its parameter count.

    preset: a named configuration (26m, tiny)
    checkpoint: read the configuration from this checkpoint directory instead
    retrieval_head: include the optional retrieval head
    """
    from needle.model import Needle, NeedleConfig, count_parameters
    from needle.model.checkpoint import resolve_checkpoint
    if checkpoint:
        cfg = NeedleConfig.load(resolve_checkpoint(checkpoint) / "config.json")
    else:
        cfg = NeedleConfig.from_name(preset, **({"retrieval_head": True} if retrieval_head else {}))
    for k, v in cfg.to_dict().items():
        print(f"{k}: {v}")
    print(f"params: {count_parameters(Needle(cfg))}")


def train(config: str, overrides: list[str]) -> None:
    """Train (pretrain or post-train) from a TOML run config; resumes when out_dir holds a checkpoint.

    config: a TOML run config, e.g. configs/tiny_e2e.toml
    overrides: key=value pairs overriding the config, e.g. lr=3e-4 model.d_model=256
    """
    from needle.train.config import load_config
    from needle.train.loop import train as run_training
    metrics = run_training(load_config(config, overrides))
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(metrics))


def run(query: str, *, tools: str, checkpoint: str = "", weights: str = "int8", no_grammar: bool = False) -> None:
    """Answer one query with the offered tools; prints the calls as JSON.

    query: the user's request
    tools: a JSON file with a list of tools (OpenAI function format, wrapped or not, or Needle's flat form)
    checkpoint: a checkpoint or run directory (default: the shipped model)
    weights: int8 (decoder and head int8, encoder bf16: fastest), bf16, or fp32 (the model's own maths)
    no_grammar: decode without the tools' grammar (answers may then not parse or not match the schemas)
    """
    from needle.data.schema import DataError, parse_query
    from needle.infer.predict import Predictor
    tool_list = _load_tools_file(tools)
    try:
        query = parse_query(query)
    except DataError as e:
        _die(str(e))
    pred = Predictor(checkpoint or None, batch_size=1, weights=weights, grammar=not no_grammar).predict(
        [(query, tool_list)])[0]
    if pred.error:
        _die(pred.error)
    if not pred.parsed:
        print(f"needle: warning: the answer did not parse as a list of calls: {pred.text[:200]!r}", file=sys.stderr)
    for w in pred.warnings:
        print(f"needle: warning: {w}", file=sys.stderr)
    print(json.dumps(pred.calls, ensure_ascii=False))


def _line_batches(max_batch: int):
    """Complete stdin lines, as many as are already available (at least one), up to max_batch."""
    fd, buf, eof = sys.stdin.fileno(), b"", False
    while not eof or buf:
        lines: list[bytes] = []
        while len(lines) < max_batch:
            if b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(line)
                continue
            if eof or (lines and not select.select([fd], [], [], 0)[0]):
                break
            chunk = os.read(fd, 1 << 16)
            eof, buf = not chunk, buf + chunk
        if eof and buf and len(lines) < max_batch:
            lines, buf = lines + [buf], b""
        if lines:
            yield lines


def _parse_request(raw: bytes, lineno: int):
    from needle.data.schema import DataError, parse_query, parse_tools
    where = f"stdin:{lineno}"
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            raise DataError(where, "<line>", "must be a JSON object with query and tools")
        return parse_query(obj.get("query"), where), parse_tools(obj.get("tools"), where)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"{where}: not valid JSON ({e})"
    except DataError as e:
        return str(e)


def predict(checkpoint: str = "", batch_size: int = 32, weights: str = "int8", no_grammar: bool = False) -> None:
    """Read JSON lines {"query": str, "tools": [...]} on stdin; write one JSON list of calls per line.

    Exactly one output line per input line, in order; [] for no call. Inputs that cannot be answered
    (malformed JSON, bad tools, tools too long) also get [] and a one-line reason on stderr.
    checkpoint: a checkpoint or run directory (default: the shipped model)
    weights: int8 (decoder and head int8, encoder bf16: fastest), bf16, or fp32 (the model's own maths)
    no_grammar: decode without the tools' grammar (answers may then not parse or not match the schemas)
    batch_size: most queries decoded together
    """
    from needle.infer.predict import Predictor
    predictor = Predictor(checkpoint or None, batch_size=batch_size, weights=weights, grammar=not no_grammar)
    lineno = 0
    for lines in _line_batches(batch_size):
        parsed = []
        for raw in lines:
            lineno += 1
            parsed.append(_parse_request(raw, lineno) if raw.strip() else f"stdin:{lineno}: empty line")
        good = [p for p in parsed if not isinstance(p, str)]
        preds = iter(predictor.predict(good))
        for p in parsed:
            pred = next(preds) if not isinstance(p, str) else None
            reason = p if isinstance(p, str) else pred.error
            if reason:
                print(f"needle: skipped: {reason}", file=sys.stderr)
            print(json.dumps(pred.calls if pred else [], ensure_ascii=False), flush=True)


def generate_data(*, output: str, num_samples: int = 100_000, seed: int = 0, shard: str = "0/1", workers: int = 0,
                  split: str = "train", mix: str = "", sources: str = "", max_tools: int = 10,
                  max_tool_chars: int = 2800, respell_p: float = 0.0, heldout: int = 0, teacher: str = "",
                  model: str = "", base_url: str = "", tools: str = "", paraphrase: str = "", invent_domains: str = "",
                  batch_size: int = 25, concurrency: int = 4, requests_per_minute: float = 0.0,
                  temperature: float = 1.0, timeout: float = 120.0, api_key_env: str = "") -> None:
    """Make tool-call training data: offline from the built-in generator, or distilled from a teacher model.

    Offline (default): deterministic for a seed; resumes after a crash; writes OUTPUT.config.json (mix, counts).
    With --heldout N: writes the unseen_tools, unseen_phrasing and unseen_domains splits (N each) into OUTPUT/.
    With --teacher: a teacher (OpenAI-compatible or Gemini) writes examples for --tools; appends and resumes.
    output: output file (.jsonl or .jsonl.gz), or a directory with --heldout
    num_samples: examples to make (all shards together, or accepted teacher examples)
    seed: generator seed
    shard: this process's part of the run, i/n (0-based), e.g. 3/8
    workers: generator processes (0: one per CPU core, up to 8)
    split: train, unseen_tools, unseen_phrasing or unseen_domains
    mix: call-type weights, e.g. single=0.3,parallel_same=0.1,none=0.1 (unnamed types keep their defaults)
    sources: tool-source weights, e.g. handwritten=0.5,invented=0.2,catalogue=0.3
    max_tools: most tools offered per example
    max_tool_chars: distractors stop at this many characters of tool JSON (~4 per token; the encoder holds 1024)
    respell_p: share of examples whose tool names and argument keys are respelled (set_lights -> lights.set)
    heldout: write the three held-out splits with this many examples each
    teacher: openai or gemini: distil from a teacher model instead of the offline generator
    model: the teacher's model name
    base_url: an OpenAI-compatible endpoint (OpenRouter, vLLM, Ollama, llama.cpp server)
    tools: JSON file with the tools the teacher writes examples for (omit to let it invent tools)
    paraphrase: JSONL file of examples whose queries the teacher rewrites, keeping every value
    invent_domains: comma-separated domains for teacher-invented tools
    batch_size: examples per teacher request
    concurrency: teacher requests in flight
    requests_per_minute: teacher rate limit (0: none)
    temperature: teacher sampling temperature
    timeout: seconds to wait for one teacher reply (a local CPU model may need several minutes a batch)
    api_key_env: environment variable holding the API key (default OPENAI_API_KEY or GEMINI_API_KEY)
    """
    if teacher or paraphrase:
        return _distil(output=output, num_samples=num_samples, seed=seed, teacher=teacher, model=model,
                       base_url=base_url, tools=tools, paraphrase=paraphrase, invent_domains=invent_domains,
                       batch_size=batch_size, concurrency=concurrency, requests_per_minute=requests_per_minute,
                       temperature=temperature, timeout=timeout, api_key_env=api_key_env)
    from needle.data.build import parse_shard, write_dataset, write_heldout
    from needle.data.generator import DEFAULT_MIX, DEFAULT_SOURCES, GenConfig, parse_weights
    if heldout:
        for rec in write_heldout(output, heldout, seed=seed, workers=workers):
            print(f"{rec['output']}: {rec['examples']} examples in {rec['seconds']} s")
        return
    cfg = GenConfig(split=split, seed=seed, mix={**DEFAULT_MIX, **parse_weights(mix)}, max_tools=max_tools,
                    sources={**DEFAULT_SOURCES, **parse_weights(sources)}, max_tool_chars=max_tool_chars, respell_p=respell_p)
    rec = write_dataset(cfg, num_samples, output, shard=parse_shard(shard), workers=workers)
    print(f"{rec['output']}: {rec['examples']} examples in {rec['seconds']} s "
          f"({rec['examples'] / max(rec['seconds'], 1e-9):.0f}/s); config and counts in {rec['output']}.config.json")


def _distil(*, output, num_samples, seed, teacher, model, base_url, tools, paraphrase, invent_domains,
            batch_size, concurrency, requests_per_minute, temperature, timeout, api_key_env) -> None:
    from needle.data import teacher as t
    if not teacher or not model:
        _die("--teacher (openai or gemini) and --model are both needed for teacher distillation")
    common = dict(teacher=teacher, model=model, output=output, base_url=base_url or None,
                  api_key_env=api_key_env or None, batch_size=batch_size, concurrency=concurrency,
                  requests_per_minute=requests_per_minute or None, temperature=temperature, timeout=timeout)
    try:
        if paraphrase:
            report = t.paraphrase(input_path=paraphrase, **common)
        else:
            domains = [d.strip() for d in invent_domains.split(",") if d.strip()] or None
            report = t.distill(num_samples=num_samples, tools_path=tools or None, seed=seed,
                               invent_domains=domains, **common)
    except t.TeacherError as e:
        _die(str(e))
    print(report.summary())
    if report.interrupted:
        print(f"needle: interrupted; every accepted example is in {output}: rerun the same command to resume",
              file=sys.stderr)
        raise SystemExit(130)


def data(action: str, file: str, token_sample: int = 2000, json_out: bool = False) -> None:
    """Inspect a dataset: `needle data stats FILE` prints counts by call type, tools, lengths, duplicates.

    action: stats
    file: a JSONL (or .jsonl.gz) file of examples
    token_sample: examples whose token lengths are measured (0: skip)
    json_out: print the statistics as JSON instead of tables
    """
    from needle.data.stats import collect, format_report
    from needle.tokenizer import Tokenizer, default_tokenizer_path
    if action != "stats":
        _die(f"unknown data action {action!r}; available: stats")
    if not Path(file).is_file():
        _die(f"file not found: {file}")
    tok = Tokenizer.from_file(default_tokenizer_path()) if token_sample else None
    stats = collect(file, tok, token_sample)
    print(json.dumps(stats, default=str) if json_out else format_report(stats))


def evaluate(*, suite: str, checkpoint: str = "", preset: str = "", predictor: str = "", categories: str = "",
             limit: int = 0, data: str = "data/heldout", batch_size: int = 32, max_new_tokens: int = 256,
             output: str = "", markdown: bool = False, device: str = "cpu", label: str = "", weights: str = "int8",
             no_grammar: bool = False, no_grounding: bool = False) -> None:
    """Score a checkpoint, or any predictor command, on BFCL or on the held-out generalisation splits.

    suite: bfcl (Berkeley Function Calling Leaderboard v4 single-turn; needs `pip install --no-deps
    bfcl-eval==2026.3.23`) or heldout (unseen tools / phrasings / domains; generated into --data if missing)
    checkpoint: a checkpoint or run directory (default: the shipped model)
    preset: instead of a checkpoint, random weights of this preset (26m, tiny): the floor to beat
    predictor: instead of a checkpoint, a command speaking `needle predict`'s line protocol
    categories: BFCL categories, comma-separated (default: all eleven)
    limit: at most this many items per category or split (0: all)
    data: directory of the held-out split files
    batch_size: queries decoded together
    max_new_tokens: longest answer generated, in tokens
    output: write the results as JSON to this file
    markdown: print markdown tables
    device: where the model runs: cpu, or cuda when a GPU is present
    label: the model's name in the results file (default: the checkpoint path or predictor command)
    weights: int8 (decoder and head int8, encoder bf16: fastest), bf16, or fp32 (the model's own maths)
    no_grammar: decode without the tools' grammar (answers may then not parse or not match the schemas)
    no_grounding: no tool prior, copy bias, cues, relevance floor, enum filling, list fixes; keep ungrounded calls
    """
    import datetime
    from needle.eval import report
    from needle.eval.run import CommandRunner, EvalError, ModelRunner, eval_bfcl, eval_heldout
    if suite not in ("bfcl", "heldout"):
        _die(f"unknown suite {suite!r}; choose bfcl or heldout")
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            _die(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    runner = (CommandRunner(predictor) if predictor else
              ModelRunner(checkpoint or None, batch_size, max_new_tokens, preset=preset, device=device,
                          weights=weights, grammar=not no_grammar, grounding=not no_grounding))
    if suite == "bfcl":
        try:
            import bfcl_eval  # noqa: F401
        except ImportError:
            _die("the BFCL suite needs its data and checker: pip install --no-deps bfcl-eval==2026.3.23")
    try:
        if suite == "bfcl":
            cats = [c.strip() for c in categories.split(",") if c.strip()] or None
            results = eval_bfcl(runner, cats, limit or None)
        else:
            results = eval_heldout(runner, Path(data), limit or None)
    except EvalError as e:
        _die(str(e))
    print(report.bfcl_tables(results, markdown) if suite == "bfcl" else report.heldout_tables(results, markdown))
    if output:
        record = {"suite": suite, "model": runner.name, "label": label or runner.name, "date": datetime.date.today().isoformat(),
                  "machine": describe(device), "command": shlex.join(["needle", *sys.argv[1:]]),
                  "results": results}
        Path(output).write_text(json.dumps(record, indent=1) + "\n")
        print(f"results written to {output}")


def download(repo_id: str, *, revision: str = "", output: str = "") -> None:
    """Fetch a newer checkpoint from a Hugging Face model repository, check that it loads, and install it.

    repo_id: the Hub model repository, owner/name
    revision: a branch, tag or commit (default: main)
    output: install here (default: ~/.cache/needle/models/OWNER--NAME, or under $NEEDLE_HOME/models)
    """
    from needle.model.download import download as fetch
    path = fetch(repo_id, revision or None, output or None)
    print(f"installed {repo_id} in {path}\nuse it with --checkpoint {path}, or for every command: "
          f"export NEEDLE_CHECKPOINT={path}")


def bench(checkpoint: str = "", preset: str = "", threads: str = "1,2", repeats: int = 20, weights: str = "int8",
          json: bool = False) -> None:
    """Measure inference speed for a typical query (~230 encoder tokens, 3 tools, 31 output tokens).

    Prefill and per-step decode tokens/s, effective output tokens/s with jump-forward, end-to-end ms
    (p50/p90), peak memory, batch-32 throughput, and the naive no-cache decoder as the baseline.
    checkpoint: a checkpoint or run directory (default: the shipped model, else random 26m weights)
    preset: instead of a checkpoint, random weights of this preset (26m, tiny)
    threads: CPU thread counts to measure, comma-separated
    repeats: timed repeats per figure (medians and percentiles over them)
    weights: int8 (decoder and head int8, encoder bf16: fastest), bf16, or fp32 (the model's own maths)
    json: print the results as JSON instead of a table
    """
    import json as json_module
    from needle.infer import bench as b
    counts = [int(t) for t in threads.split(",") if t.strip().isdigit() and int(t) > 0]
    if not counts or len(counts) != len(threads.split(",")):
        _die(f"--threads must list positive integers, e.g. 1,2; got {threads!r}")
    record = b.run(checkpoint, preset, counts, repeats, weights)
    record["machine"] = describe()
    print(json_module.dumps(record, indent=1) if json else
          f"{record['model']} on {record['machine']}, {weights} weights\n" + b.table(record["results"]))


COMMANDS = {"info": info, "train": train, "run": run, "predict": predict, "generate-data": generate_data,
            "data": data, "eval": evaluate, "bench": bench, "download": download}


def _doc_parts(fn) -> tuple[str, dict[str, str]]:
    lines = inspect.getdoc(fn).splitlines()
    helps = {}
    for line in lines:
        name, sep, text = line.partition(": ")
        if sep and name.isidentifier():
            helps[name] = text
    return lines[0], helps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="needle", description="Needle: a tiny tool-calling model.")
    subs = parser.add_subparsers(dest="command", required=True)
    for name, fn in COMMANDS.items():
        summary, helps = _doc_parts(fn)
        sp = subs.add_parser(name, help=summary, description=inspect.getdoc(fn).split("\n\n")[0])
        for p in inspect.signature(fn).parameters.values():
            h = helps.get(p.name)
            if p.default is inspect.Parameter.empty and p.kind is p.KEYWORD_ONLY:
                sp.add_argument(f"--{p.name.replace('_', '-')}", required=True, help=h)
            elif p.default is inspect.Parameter.empty:
                sp.add_argument(p.name, help=h, nargs="*" if p.annotation == "list[str]" else None)
            elif p.annotation == "bool":
                sp.add_argument(f"--{p.name.replace('_', '-')}", action="store_true", help=h)
            else:
                sp.add_argument(f"--{p.name.replace('_', '-')}", type=type(p.default), default=p.default,
                                help=f"{h} (default: {p.default!r})")
        sp.set_defaults(_fn=fn)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = vars(build_parser().parse_args(argv))
    fn = args.pop("_fn")
    args.pop("command")
    from needle.data.schema import DataError
    from needle.model.checkpoint import CheckpointError
    try:
        fn(**args)
    except (CheckpointError, DataError, FileNotFoundError, ValueError) as e:
        _die(str(e))
    except KeyboardInterrupt:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
