"""Evaluation results as tables: plain text for the terminal, markdown for READMEs and model cards."""
from __future__ import annotations


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


HELDOUT_COLS = [("exact_match", "exact"), ("tool_name_f1", "name F1"), ("argument_accuracy", "args"),
                ("parse_rate", "parsed"), ("no_call_accuracy", "call/no-call"), ("abstain_accuracy", "abstain"),
                ("call_accuracy", "call")]


def heldout_tables(results: dict, markdown: bool = False) -> str:
    header = ["split", "n"] + [label for _, label in HELDOUT_COLS]
    rows = [[split, str(r["n"])] + [_pct(r[k]) for k, _ in HELDOUT_COLS] for split, r in results.items()]
    parts = ["Held-out generalisation (%):", _table(header, rows, markdown)]
    if all("validity" in r for r in results.values()):
        parts.append("; ".join(f"{split}: {_validity(r['validity'])}" for split, r in results.items()))
    for key, title in (("by_call_type", "call type"), ("by_tools_offered", "tools offered")):
        keys = list(dict.fromkeys(k for r in results.values() for k in r[key]))
        if key == "by_tools_offered":
            keys.sort(key=int)
        sub = [[k] + [f"{_pct(r[key][k]['exact_match'])} ({r[key][k]['n']})" if k in r[key] else "-"
                      for r in results.values()] for k in keys]
        parts += [f"Exact match by {title}, % (n):", _table([title, *results], sub, markdown)]
    return "\n\n".join(parts)


def bfcl_tables(results: dict, markdown: bool = False) -> str:
    rows = [[c, str(r["total"]), str(r["correct"]), _pct(r["accuracy"])] for c, r in results["categories"].items()]
    agg = results["aggregates"]
    arows = [[k.replace("_", " "), _pct(v)] for k, v in agg.items() if k != "categories" and v is not None]
    return "\n\n".join([
        "BFCL v4 single-turn categories:", _table(["category", "n", "correct", "accuracy %"], rows, markdown),
        "Aggregates (always answering [] scores 33.3 on the overall mean: read AST and irrelevance together):",
        _table(["aggregate", "%"], arows, markdown),
        "; ".join(filter(None, [f"outputs that failed to parse: {results['failed_to_parse']}",
                                _validity(results.get("validity")), f"wall time {results['seconds']} s"]))])


def _validity(v: dict | None) -> str:
    if not v:
        return ""
    return f"answers valid against the offered schemas: {v['schema_valid']} of {v['n']}"
