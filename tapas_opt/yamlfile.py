"""YAML input files that remember the line of every key, so that a problem can say where it is.

Every YAML file tapas-opt reads (``datacenter.yaml``, ``physics.yaml``, ``region.yaml``, what-if
scenario files) is parsed once by PyYAML into its node tree, whose marks give each key's line,
and the Python values are constructed from that tree. A problem about a key is then reported as ``FILE:LINE``, like
a problem in a CSV cell. A key that is missing from the file (a default that fails a range
check, say) has no line; the nearest key above it that is in the file gives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from tapas_opt.errors import Problem


def _line_index(node, path: tuple = (), out: dict | None = None) -> dict:
    """Map every key path of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _line_index(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), out)
    return out


def _duplicate_keys(node, file: str, path: tuple = ()) -> list[Problem]:
    """A key given twice in one mapping: PyYAML keeps the last silently, so a setting the user
    reads first in the file would be ignored."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first and key != "<<":
                dotted = ".".join(str(p) for p in (*path, key))
                problems.append(Problem("duplicate_key", file, f"'{dotted}' is given twice (first on line "
                                        f"{first[key]}): YAML would silently keep this one",
                                        "keep one of them", line))
            first.setdefault(key, line)
            problems += _duplicate_keys(value_node, file, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, file, (*path, i))
    return problems


@dataclass(frozen=True)
class KeyLines:
    """The line of every key path of one YAML document (``("placement", "seed")`` -> 14)."""

    lines: dict = field(default_factory=dict)

    def line(self, path: tuple | str | None) -> int | None:
        """Line of ``path`` (a tuple, or a dotted string such as ``"placement.seed"``), else of
        its nearest ancestor in the file, else None."""
        if path is None:
            return None
        if isinstance(path, str):
            path = tuple(int(p) if p.isdigit() else p for p in path.split("."))
        for k in range(len(path), 0, -1):
            # List items are indexed by number, mapping keys by text (a server id "12").
            for key in (path[:k], tuple(str(p) for p in path[:k])):
                if key in self.lines:
                    return self.lines[key]
        return None


_OPEN_CONSTRUCTS = {"quoted scalar": "a quoted text", "flow mapping": "a { } mapping",
                    "flow sequence": "a [ ] list", "block": "an indented block"}
"""PyYAML's names of what a file can end inside, in plain words."""


def _syntax_problem(exc: yaml.YAMLError, file: str, hint: str) -> Problem:
    """A YAML syntax error at the line PyYAML points at. A construct left open to the end of the
    file (a quote, a bracket) is reported where it opens: the end of the file is after the last
    line, which the user cannot go to."""
    problem = getattr(exc, "problem", None) or ""
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if opened is not None and ("end of stream" in problem or "<stream end>" in problem):
        what = next((said for jargon, said in _OPEN_CONSTRUCTS.items() if jargon in (context or "")),
                    "a construct")
        return Problem("bad_yaml", file, f"not valid YAML: the file ends inside {what} that opens at line "
                       f"{opened.line + 1}, column {opened.column + 1}: is it never closed?", hint, opened.line + 1)
    mark = getattr(exc, "problem_mark", None) or opened
    return Problem("bad_yaml", file, f"not valid YAML: {exc}", hint, mark.line + 1 if mark is not None else None)


def load_yaml(path: Path | str, file: str, hint: str = "") -> tuple[Any, KeyLines, list[Problem]]:
    """Parse a YAML file; return its value, the line of every key and the problems (a syntax
    error, with the line PyYAML points at; a key given twice in one mapping). An empty file is
    ``{}``."""
    try:
        with open(path, encoding="utf-8") as stream:  # a stream: PyYAML's messages name the file
            loader = yaml.SafeLoader(stream)
            try:
                node = loader.get_single_node()
                raw = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        return None, KeyLines(), [_syntax_problem(exc, file, hint)]
    except UnicodeDecodeError as exc:
        return None, KeyLines(), [Problem("bad_yaml", file, f"not UTF-8 text (at byte offset {exc.start}: {exc.reason})",
                                          "save the file as UTF-8")]
    if node is None:
        return {}, KeyLines(), []
    return ({} if raw is None else raw), KeyLines(_line_index(node)), _duplicate_keys(node, file)


def unreadable(problems: Iterable[Problem]) -> bool:
    """Did :func:`load_yaml` fail to read the file (as opposed to reading it with duplicate
    keys, whose value is still known: the other checks can run and report alongside)?"""
    return any(p.code == "bad_yaml" for p in problems)


def locate(problems: Iterable[Problem], file: str, lines: KeyLines) -> list[Problem]:
    """Give each problem of ``file`` that names its key in ``column`` (a dotted key path) the
    key's line instead: the key is already in the message, the line is what was missing."""
    out = []
    for p in problems:
        if p.file == file and p.column and p.line is None:
            p = replace(p, line=lines.line(p.column), column=None)
        out.append(p)
    return out


__all__ = ["KeyLines", "load_yaml", "locate", "unreadable"]
