"""Safe YAML/JSON loading that keeps the line and column of every value.

Safety: only the core YAML tags are accepted (no ``!!python/...`` or custom tags, so
no file can make us build objects or run code); files over 1 MiB are refused; aliases
are allowed but the expanded document is capped at 100,000 nodes (a "billion laughs"
file is refused instead of exhausting memory); duplicate keys are errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import InvalidInput, Problem

MAX_BYTES = 1 << 20
MAX_NODES = 100_000

Path_ = tuple[Any, ...]
Positions = dict[Path_, tuple[int, int]]  # path -> (line, column), 1-based

_CORE = "tag:yaml.org,2002:"
_ALLOWED = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.positions: Positions = {}
        self.count = 0

    def fail(self, node: Node, message: str) -> InvalidInput:
        return InvalidInput([Problem(self.file, node.start_mark.line + 1, node.start_mark.column + 1, message)])

    def build(self, node: Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"document too large (more than {MAX_NODES} values after expanding aliases)")
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag not in _ALLOWED:
            raise self.fail(node, f"tag {node.tag!r} is not allowed (only plain YAML values)")
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == f"{_CORE}merge":
                    raise self.fail(key_node, "merge keys (<<) are not supported; write the keys out")
                key = self.build(key_node, path + ("<key>",))
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise self.fail(key_node, "mapping keys must be plain strings")
                key = str(key)
                if key in out:
                    raise self.fail(key_node, f"duplicate key '{key}'")
                self.positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return _scalar(node)


def _scalar(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == f"{_CORE}null":
        return None
    if tag == f"{_CORE}bool":
        return value.lower() in ("true", "yes", "on")
    if tag == f"{_CORE}int":
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return int(value.replace("_", ""))
    if tag == f"{_CORE}float":
        v = value.lower().replace("_", "")
        if v in (".inf", "+.inf"):
            return float("inf")
        if v == "-.inf":
            return float("-inf")
        if v == ".nan":
            return float("nan")
        return float(v)
    # ruamel's composer marks folded line breaks (style ">") with BEL; folding means
    # the break becomes nothing more than the space already kept beside it.
    return value.replace("\a\n", "\n").replace("\a", "") if "\a" in value else value


def load_document(path: str | Path) -> tuple[Any, Positions]:
    """Parse a YAML or JSON file; return (data, positions). Raises InvalidInput."""
    file = str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise InvalidInput([Problem(file, 0, 0, "file not found")]) from None
    except OSError as exc:
        raise InvalidInput([Problem(file, 0, 0, f"cannot read: {exc.strerror}")]) from None
    if size > MAX_BYTES:
        raise InvalidInput([Problem(file, 1, 1, f"file is {size} bytes; experiments are limited to {MAX_BYTES}")])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput([Problem(file, 1, 1, f"not UTF-8 text ({exc.reason})")]) from None
    return load_text(text, file)


def load_text(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    yaml = YAML(typ="rt", pure=True)
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise InvalidInput([Problem(file, line, col, f"YAML syntax: {what}")]) from None
    except YAMLError as exc:
        raise InvalidInput([Problem(file, 1, 1, f"YAML syntax: {exc}")]) from None
    except RecursionError:
        raise InvalidInput([Problem(file, 1, 1, "document nested too deeply")]) from None
    if node is None:
        raise InvalidInput([Problem(file, 1, 1, "the file is empty")])
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise InvalidInput([Problem(file, 1, 1, "document nested too deeply")]) from None
    except ValueError as exc:
        raise InvalidInput([Problem(file, 1, 1, f"bad value: {exc}")]) from None
    return data, builder.positions


def position(positions: Positions, path: Path_) -> tuple[int, int]:
    """Line/column of ``path``, or of its nearest parent that has one."""
    path = tuple(path)
    while path:
        if path in positions:
            return positions[path]
        path = path[:-1]
    return positions.get((), (1, 1))
