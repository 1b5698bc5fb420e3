"""Papers combine by arguments and slots, not by subclasses that only name a combination: no class in
detrkit/ or projects/ has a body that is only ``pass``, a docstring, or one class attribute."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]


def empty_classes(source: str) -> list[str]:
    """Names of the classes in ``source`` whose body, docstring aside, is nothing, ``pass`` or one
    assignment."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        only_pass = all(isinstance(s, ast.Pass) for s in body)
        one_attribute = len(body) == 1 and isinstance(body[0], ast.Assign | ast.AnnAssign)
        if only_pass or one_attribute:
            found.append(node.name)
    return found


def test_the_rule_finds_empty_classes():
    source = '''
class Named(Base):
    """Only a docstring."""
class Flag(Base):
    value = 2
class Passes: pass
class Real(Base):
    def forward(self):
        return 1
'''
    assert empty_classes(source) == ["Named", "Flag", "Passes"]


def test_no_class_only_names_a_combination():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("detrkit", "projects")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in empty_classes(path.read_text())
    ]
    assert offenders == []
