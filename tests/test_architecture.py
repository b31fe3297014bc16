"""Data flows one way: data -> tokenizer -> model -> train | infer -> eval -> cli. Checked on the imports."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "needle"
FORBIDDEN = {
    "needle.model": ("needle.tokenizer", "needle.data", "needle.train", "needle.infer", "needle.eval", "needle.cli"),
    "needle.data": ("needle.model", "needle.train", "needle.infer", "needle.eval", "needle.cli"),
    "needle.tokenizer": ("needle.model", "needle.data", "needle.train", "needle.infer", "needle.eval", "needle.cli"),
    "needle.train": ("needle.infer", "needle.eval", "needle.cli"),
    "needle.infer": ("needle.train", "needle.eval", "needle.cli"),
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_data_flow(path):
    module = "needle." + ".".join(path.relative_to(PKG).with_suffix("").parts)
    for owner, banned in FORBIDDEN.items():
        if module == owner or module.startswith(owner + "."):
            bad = [i for i in _imports(path) if i.startswith(banned)]
            assert not bad, f"{module} imports {bad} against the data flow"


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_modules_have_docstrings_and_stay_small(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path} has no module docstring"
    assert len(path.read_text().splitlines()) <= 400
