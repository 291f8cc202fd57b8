"""The one YAML loader of every config file: gate, policy, register maps, console.

``yaml.safe_load`` is safe against code execution but not against a bad file: a value
its own tag cannot construct (``!!int abc``, ``2026-02-30``) raises a bare ValueError,
bytes that are not UTF-8 a UnicodeDecodeError, and deep nesting (5,000 ``[``) takes
seconds before a RecursionError. Anchors can also multiply a small file into millions of
nodes for the validator behind it. Here every one of those is a ``ConfigError`` whose
text is one line naming the file and, when it can, the field, found in well under a
second: the file is bounded in size, the composer in depth, the tree in nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # a config file is a few KB; a megabyte is not a config
MAX_DEPTH = 64  # the deepest real config is about 6 levels
MAX_NODES = 20_000  # counted with aliases expanded: what a validator would walk


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is one line naming file and field."""


class _TooDeep(yaml.YAMLError):
    pass


class _BadValue(yaml.YAMLError):
    """A scalar its tag cannot construct; keeps the node to name the field."""

    def __init__(self, node: Node, why: str) -> None:
        super().__init__(why)
        self.node, self.why = node, why


class _Loader(yaml.SafeLoader):
    """SafeLoader with a depth bound while composing and construction errors typed."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # the scanner re-checks every open flow level per token: 5,000 '[' cost seconds
        if self.flow_level >= MAX_DEPTH:
            line = self.get_mark().line + 1  # type: ignore[attr-defined]
            raise _TooDeep(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(token_class)  # type: ignore[misc]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[attr-defined]
                raise _TooDeep(f"line {line}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        # PyYAML keeps the last of a key written twice without a word: an edit that adds
        # a second `database:` (or `document_key_file:`) silently replaced the first.
        # Checked as composed, before merge keys (<<) are expanded: overriding a merged
        # key is what YAML means and stays allowed.
        node: MappingNode = super().compose_mapping_node(anchor)  # type: ignore[misc]
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                ident = (key.tag, key.value)
                if ident in seen:
                    raise _BadValue(key, f"the key {key.value[:40]!r} is written twice")
                seen.add(ident)
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            value = node.value if isinstance(node, ScalarNode) else node.tag
            raise _BadValue(node, f"cannot read {str(value)[:40]!r} as {node.tag}: {exc}") from None


def _line(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def _count(root: Node) -> int:
    """Nodes with aliases expanded, stopping just past ``MAX_NODES``."""
    n, todo = 0, [root]
    while todo and n <= MAX_NODES:
        node = todo.pop()
        n += 1
        if isinstance(node, SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                todo.extend((k, v))
    return n


def _field_of(root: Node, target: Node) -> str:
    """The dotted key path of ``target`` in the tree (``gate.site``), '' if not found."""
    todo: list[tuple[Node, str]] = [(root, "")]
    seen: set[int] = set()
    while todo:
        node, path = todo.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            todo.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node.value))
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                key = str(k.value) if isinstance(k, ScalarNode) else "?"
                todo.append((k, path))
                todo.append((v, f"{path}.{key}" if path else key))
    return ""


def parse(text: str, path: str | Path) -> Any:
    """Parse one YAML document; every problem is a one-line ``ConfigError``."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{path}: {len(text)} characters, more than {MAX_BYTES}")
    loader: _Loader | None = None
    root: Node | None = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        root = loader.get_single_node()
        if root is None:
            return None
        if _count(root) > MAX_NODES:
            raise ConfigError(f"{path}: more than {MAX_NODES} values (anchors expanding?)")
        return loader.construct_document(root)
    except _BadValue as exc:
        field = _field_of(root, exc.node) if root is not None else ""
        mark = exc.node.start_mark
        where = f"{field}: " if field else ""
        raise ConfigError(f"{path}: {where}line {mark.line + 1}: {_line(exc.why)}") from None
    except _TooDeep as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        why = _line(str(getattr(exc, "problem", None) or exc))
        raise ConfigError(f"{path}: invalid YAML{where}: {why}") from None
    except RecursionError:  # a bound above should have caught it first
        raise ConfigError(f"{path}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_mapping(text: str, path: str | Path) -> dict[str, Any]:
    """Parse YAML whose top level must be a mapping."""
    data = parse(text, path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def read_text(path: str | Path) -> str:
    """A config file's text (strict UTF-8, bounded), or a one-line ``ConfigError``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode(raw, path)


def decode(raw: bytes, path: str | Path) -> str:
    """A config file's bytes as text: strict UTF-8, bounded; else a ``ConfigError``."""
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES} bytes; not a config file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read and parse a config file whose top level is a mapping."""
    return parse_mapping(read_text(path), path)
