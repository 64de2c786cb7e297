"""Reading a TOML declaration with ``file:line: reason`` errors: the declaration parser's tools.

:class:`_Doc` finds the line of a table or key in the declaration's text (tomllib
keeps none); the ``_table``/``_string``/``_number``/``_strings``/``_plain``
checkers validate one value each and raise :class:`ConfigError` naming the file,
the line and what is wrong. :mod:`autograder.declaration` (the format and its one
parser) is their only user.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A configuration problem (bad declaration, unknown assignment, no course root)."""


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(text))


class _Doc:
    """The declaration's text, to name the line of a table, key or list entry in errors."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.where: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(self.lines, start=1):
            m = _HEADER.match(line)
            if m:
                table = _dotted(m.group(1))
                self.where.setdefault(table, number)
                continue
            m = _KEY.match(line)
            if m:
                self.where.setdefault(table + _dotted(m.group(1)), number)

    def line(self, path: tuple[str, ...], value: Any = None) -> int:
        """The line of ``path`` (or of its closest declared parent); of ``value`` in its list when given."""
        for k in range(len(path), 0, -1):
            if path[:k] in self.where:
                start = self.where[path[:k]]
                if isinstance(value, str) and k == len(path):
                    for n in range(start, min(start + 200, len(self.lines)) + 1):
                        if f'"{value}"' in self.lines[n - 1] or f"'{value}'" in self.lines[n - 1]:
                            return n
                return start
        return 1

    def error(self, path: tuple[str, ...], reason: str, value: Any = None) -> ConfigError:
        return ConfigError(f"{self.source}:{self.line(path, value)}: {reason}")


def _name(path: tuple[str, ...]) -> str:
    """``("tasks", "knn", "points")`` -> ``[tasks.knn] points``."""
    return f"[{'.'.join(path[:-1])}] {path[-1]}" if len(path) > 1 else f"[{path[0]}]"


def _table(doc: _Doc, data: Any, path: tuple[str, ...], allowed: set[str],
           required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise doc.error(path, f"[{'.'.join(path)}] must be a table")
    for key in data:
        if key not in allowed:
            raise doc.error((*path, key), f"unknown key {key!r} in [{'.'.join(path)}] "
                                          f"(known: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in data:
            raise doc.error(path, f"[{'.'.join(path)}] needs {key!r}")
    return data


def _string(doc: _Doc, data: dict[str, Any], path: tuple[str, ...], default: str | None = None) -> str:
    value = data.get(path[-1], default)
    if not isinstance(value, str) or not value:
        raise doc.error(path, f"{_name(path)} must be a non-empty string, got {value!r}")
    return value


def _number(doc: _Doc, data: dict[str, Any], path: tuple[str, ...], default: float | None = None,
            *, positive: bool = True) -> float:
    value = data.get(path[-1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(path, f"{_name(path)} must be a number, got {value!r}")
    if positive and not value > 0:
        raise doc.error(path, f"{_name(path)} must be > 0, got {value!r}")
    if not positive and value < 0:
        raise doc.error(path, f"{_name(path)} must be >= 0, got {value!r}")
    return float(value)


def _strings(doc: _Doc, data: dict[str, Any], path: tuple[str, ...], *, kind: str = "string",
             pattern: re.Pattern[str] | None = None, relative: bool = False,
             nonempty: bool = False, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = data.get(path[-1], list(default))
    if not isinstance(value, list) or (nonempty and not value):
        raise doc.error(path, f"{_name(path)} must be a {'non-empty ' if nonempty else ''}list of {kind}s")
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not item:
            raise doc.error(path, f"{_name(path)}: {item!r} is not a valid {kind}")
        if pattern is not None and not pattern.match(item):
            raise doc.error(path, f"{_name(path)}: {item!r} is not a valid {kind}", item)
        if relative and (item.startswith("/") or "\\" in item or ".." in Path(item).parts):
            raise doc.error(path, f"{_name(path)}: {item!r} must be a relative path inside the folder", item)
        if item in seen:
            raise doc.error(path, f"{_name(path)}: {item!r} is listed twice", item)
        seen.add(item)
    return tuple(value)


def _plain(doc: _Doc, value: Any, path: tuple[str, ...], *, tables: bool) -> Any:
    """Check a free-form setting: strings, numbers, booleans, lists and (if ``tables``) tables of them."""
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return tuple(_plain(doc, v, path, tables=False) for v in value)
    if isinstance(value, dict) and tables:
        for key in value:
            if not _ID_RE.match(key):
                raise doc.error((*path, key), f"{_name((*path, key))}: key must be an identifier")
        return {k: _plain(doc, v, (*path, k), tables=True) for k, v in value.items()}
    raise doc.error(path, f"{_name(path)} has an unsupported value {value!r}")
