"""The project's modules depend on each other in one direction, and none reaches into another's private names.

    console ← errors ← model ← data ← core ← {training, inference} ← facts ← {benchmark, lessons, playground}
    ← command lines

A module may import from its own layer's package and from the layers before it; packages beside each other do not
import one another: loading a model to use it (``inference``) never goes through the trainer's package, and
benchmark, lessons and playground stand apart. Read from the source with ``ast``, so an import
inside a function counts too.
"""
import ast

import pytest

from tests.conftest import ROOT

LAYERS = {"console": -1, "errors": 0, "model": 1, "data": 2, "core": 3, "training": 4, "inference": 4, "facts": 4.5,
          "benchmark": 5, "lessons": 5, "playground": 5}
COMMAND_LINE = 6                         # train.py, generate.py, bench.py, learn.py, play.py, toy_eval.py


def project_files():
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] in {*LAYERS, "tests"}
                  or (p.parent == ROOT))


def top_name(path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def project_imports(path):
    """(imported module, [names]) for every import of a project module in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [(node.module, [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            modules = [(a.name, []) for a in node.names]
        else:
            continue
        for module, names in modules:
            if module.split(".")[0] in {*LAYERS, "tests"} or (ROOT / f"{module.split('.')[0]}.py").is_file():
                yield module, names


def layer(name: str) -> int:
    return LAYERS.get(name, COMMAND_LINE)


@pytest.mark.parametrize("path", [p for p in project_files() if top_name(p) != "tests"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path):
    mine = top_name(path)
    for module, _ in project_imports(path):
        theirs = module.split(".")[0]
        if theirs == mine:
            continue
        assert theirs != "tests", f"{path.name} imports test code ({module})"
        assert layer(theirs) < layer(mine), f"{path.relative_to(ROOT)} imports {module}: against the direction"


@pytest.mark.parametrize("path", project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_from_another_module(path):
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for module, names in project_imports(path):
        private = [n for n in names if n.startswith("_") and module != here]
        assert not private, f"{here} imports {private} from {module}"


def test_the_rule_catches_what_it_should(tmp_path, monkeypatch):
    """The checks above can fail: a model module importing training, or a private name, is found."""
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "training").mkdir()
    bad = tmp_path / "model" / "bad.py"
    bad.write_text("def f():\n    from training.loop import _hidden\n")
    assert top_name(bad) == "model"
    with pytest.raises(AssertionError, match="against the direction"):
        test_imports_flow_one_way(bad)
    with pytest.raises(AssertionError, match="imports \\['_hidden'\\]"):
        test_no_private_name_is_imported_from_another_module(bad)
