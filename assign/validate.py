"""One way to check input: collect every problem with its path, then raise once.

Every reader of user input (snapshots, configs, scenarios, histories, experiment logs, CLI
options) uses :class:`Problems` so that a person sees all that is wrong at once, each problem
prefixed by where it is (``contacts[17].language: unknown code 'xx'``), and so that every bad
input surfaces as :class:`~assign.errors.InputError` (the CLI's exit 2).

>>> p = Problems()
>>> p.number("config.top_k", 0, lo=1, integer=True)
>>> p.number("config.w_score", float("nan"))
>>> p.items
['config.top_k: 0 is below the minimum 1', 'config.w_score: must be finite, got nan']
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assign.errors import InputError


def is_number(x: Any) -> bool:
    """A real number that is not a bool (``True`` is an int to Python, never to a user)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


class Problems:
    """Collects problems as ``"path: message"`` strings; :meth:`raise_if_any` raises them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: str, message: str) -> None:
        item = f"{path}: {message}" if path else message
        if not is_unicode(item):  # a lone surrogate from the input must not break printing
            item = item.encode("utf-8", "backslashreplace").decode("utf-8")
        self.items.append(item)

    def extend(self, items: Iterable[str]) -> None:
        self.items.extend(items)

    def raise_if_any(self, *, what: str = "input", error: type[InputError] = InputError) -> None:
        if self.items:
            raise error(self.items, what=what)

    def number(self, path: str, x: Any, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, integer: bool = False, optional: bool = False) -> float | None:
        """``x`` as a finite float within [lo, hi] (``lo_open``: strictly above lo), else a
        problem and None. NaN and infinities are always problems: a NaN passes every ``<``
        check, which is how a bad option used to slip through."""
        if x is None and optional:
            return None
        if not is_number(x):
            self.add(path, f"expected a number, got {type(x).__name__} {brief(x)}")
            return None
        try:
            v = float(x)
        except OverflowError:
            self.add(path, f"number too large: {str(x)[:20]}... ({len(str(x))} digits)")
            return None
        if math.isnan(v) or math.isinf(v):
            self.add(path, f"must be finite, got {brief(x)}")
            return None
        if integer and v != int(v):
            self.add(path, f"expected a whole number, got {brief(x)}")
            return None
        if lo is not None and (v <= lo if lo_open else v < lo):
            self.add(path, f"{x!r} must be above {lo:g}" if lo_open else f"{x!r} is below the minimum {lo:g}")
            return None
        if hi is not None and v > hi:
            self.add(path, f"{x!r} is above the maximum {hi:g}")
            return None
        return v

    def choice(self, path: str, x: Any, options: Iterable[Any]) -> Any:
        """``x`` if it is one of ``options``, else a problem naming them and None."""
        options = tuple(options)
        if x in options:
            return x
        self.add(path, f"must be one of {', '.join(map(str, options))}, got {brief(x)}")
        return None

    def text(self, path: str, x: Any, *, optional: bool = False) -> str | None:
        """``x`` as a non-empty string that is valid Unicode (no lone surrogate, which no
        UTF-8 writer -- CSV, Parquet -- can encode), else a problem and None."""
        if x is None and optional:
            return None
        if not isinstance(x, str) or not x.strip():
            self.add(path, f"expected a non-empty string, got {type(x).__name__} {brief(x)}")
            return None
        if not is_unicode(x):
            self.add(path, f"not valid Unicode (lone surrogate) in {brief(x)}")
            return None
        return x

    def lookalikes(self, path: str, names: Iterable[Any], known: Iterable[str]) -> None:
        """A problem for each name that is not one of ``known`` but looks like one (another
        case, surrounding whitespace, a plural): such a name is a typo, never an extra field
        to keep, or a full agent silently gets more work."""
        canon, known = _canon_of(tuple(known))
        for name in names:
            if not isinstance(name, str):
                self.add(f"{path}.{brief(name)}", "field names must be strings")
                continue
            if name not in known and _canonical(name) in canon:
                shown = name if name == name.strip() else repr(name)
                self.add(f"{path}.{shown}" if path else shown,
                         f"unknown field {name!r}; did you mean {canon[_canonical(name)]!r}?")


# ----------------------------------------------------------------------------- limits and files

#: Largest input file read, in bytes: bounds the memory a request may take.
MAX_FILE_BYTES = 256 * 2**20
#: Deepest nesting accepted in a JSON document (a snapshot needs 4).
MAX_JSON_DEPTH = 32


def brief(x: Any, n: int = 40) -> str:
    r = repr(x)
    return r if len(r) <= n else r[: n - 3] + "..."


def is_unicode(text: str) -> bool:
    """True when ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _canon_of(known: tuple[str, ...]) -> tuple[dict[str, str], frozenset[str]]:
    """Canonical form -> name of a tuple of known field names (computed once per tuple: a
    snapshot asks for the same few tuples once per record)."""
    canon = {_canonical(k): k for k in known}
    return canon, frozenset(canon.values())


def _canonical(name: str) -> str:
    """Field name with case, separators and a plural ending removed (short names cached:
    the same few names come in every record; long ones are not kept)."""
    return _canonical_cached(name) if len(name) <= 64 else _canonical_of(name)


@functools.lru_cache(maxsize=4096)
def _canonical_cached(name: str) -> str:
    return _canonical_of(name)


def _canonical_of(name: str) -> str:
    words = re.split(r"[\s_\-]+", name.strip().lower())
    out = []
    for w in words:
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("s") and not w.endswith("ss") and len(w) > 3:
            w = w[:-1]
        out.append(w)
    return "".join(out)


def read_bytes(path: str | Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``; missing, unreadable or too large files are :class:`InputError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise InputError([f"{p}: is a directory, expected a file"], what=what)
        if size > limit:
            raise InputError([f"{p}: {size} bytes exceeds the limit of {limit} bytes"], what=what)
        return p.read_bytes()
    except FileNotFoundError as err:
        raise InputError([f"{p}: no such file"], what=what) from err
    except OSError as err:
        raise InputError([f"{p}: cannot read: {err.strerror or err}"], what=what) from err


def decode_text(data: bytes, *, path: str | Path, what: str = "file") -> str:
    """UTF-8 text (a byte-order mark is allowed); other encodings and binary data are a
    problem naming the byte offset, not a crash deep inside a parser."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError([f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                          "save the file as UTF-8"], what=what) from err
    if "\x00" in text:
        raise InputError([f"{path}: holds a NUL byte at offset {text.index(chr(0))}: binary, not text"], what=what)
    return text


def json_depth(doc: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit to hit)."""
    depth, stack = 0, [(doc, 1)]
    while stack:
        x, d = stack.pop()
        depth = max(depth, d)
        if d > MAX_JSON_DEPTH:
            return d
        if isinstance(x, Mapping):
            stack.extend((v, d + 1) for v in x.values())
        elif isinstance(x, list):
            stack.extend((v, d + 1) for v in x)
    return depth


def load_json(path: str | Path, *, what: str = "file") -> Any:
    """Read a JSON file: decoding, syntax, nesting and size failures are :class:`InputError`
    naming the file (and the line and column for syntax errors)."""
    text = decode_text(read_bytes(path, what=what), path=path, what=what)
    try:
        doc = json.loads(text)  # NaN/Infinity parse; the field's validation names them
    except json.JSONDecodeError as err:
        raise InputError([f"{path}: not valid JSON: {err}"], what=what) from err
    except RecursionError as err:
        raise InputError([f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"], what=what) from err
    except ValueError as err:  # e.g. an integer with more digits than Python converts
        raise InputError([f"{path}: cannot read JSON: {err}"], what=what) from err
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise InputError([f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"], what=what)
    return doc


def check_csv(text: str, *, path: str | Path, what: str = "file", limit: int = 20) -> list[str]:
    """The header of CSV ``text`` after checking every row has as many fields as the header
    (a ragged row is a problem naming its line; pandas would pad or shift it silently)."""
    p = Problems()
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, None)
        if not header:
            raise InputError([f"{path}: empty file (no header row)"], what=what)
        for row in rows:
            if row and len(row) != len(header):
                if len(p.items) < limit:
                    p.add(f"{path}:{rows.line_num}", f"expected {len(header)} fields, got {len(row)}")
                else:
                    p.items[-1] = f"{path}: more rows with the wrong number of fields"
    except csv.Error as err:
        raise InputError([f"{path}: not valid CSV: {err}"], what=what) from err
    dup = sorted({h for h in header if header.count(h) > 1})
    for h in dup:
        p.add(f"{path}.{h}", "column appears more than once")
    p.raise_if_any(what=what)
    return header


def scalar_cells(p: Problems, path: str, values: Sequence[Any]) -> None:
    """A problem for each list-, dict- or array-valued cell (Parquet allows them) where a
    scalar belongs; only the first few are listed."""
    bad = [i for i, v in enumerate(values) if isinstance(v, (list, tuple, dict, set, np.ndarray))]
    for i in bad[:5]:
        kind = "object" if isinstance(values[i], dict) else "list"
        p.add(f"{path}[{i}]", f"expected a single value, got a {kind}")
    if len(bad) > 5:
        p.add(path, f"{len(bad) - 5} more non-scalar cells")
