"""Reading experiment logs and histories (CSV, gzipped CSV, Parquet), turning every way a file
can be unreadable into an :class:`InputError` that names the file and the problem: missing,
empty, binary, not UTF-8, ragged rows (with their line numbers), not Parquet. Values are read
leniently and checked per column later (``numeric_column``), so one bad cell quarantines one
value, not a file."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from assign.errors import InputError
from assign.validate import Problems

_TRUE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "yes": 1.0, "no": 0.0}
MAX_SHOWN = 5


def _text(p: Path, raw: bytes, problems: Problems) -> str | None:
    if p.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            problems.add(str(p), f"not a readable gzip file ({err})")
            return None
    if not raw.strip():
        problems.add(str(p), "empty file")
        return None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        problems.add(str(p), "UTF-16 text, not UTF-8 text; save it as UTF-8")
        return None
    if b"\x00" in raw[:65536]:
        problems.add(str(p), "binary data (NUL bytes), not CSV text")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.add(str(p), f"not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r}); "
                             "save it as UTF-8")
        return None


def _ragged(text: str) -> list[int]:
    """1-based line numbers of records whose field count differs from the header's."""
    rows = csv.reader(io.StringIO(text))
    try:
        width = len(next(rows))
    except StopIteration:
        return []
    bad = []
    for row in rows:
        if row and len(row) != width:
            bad.append(rows.line_num)
    return bad


def _read_csv(p: Path, problems: Problems) -> pd.DataFrame | None:
    text = _text(p, p.read_bytes(), problems)
    if text is None:
        return None
    try:
        bad = _ragged(text)
    except csv.Error as err:
        problems.add(str(p), f"not valid CSV ({err})")
        return None
    if bad:
        shown = ", ".join(map(str, bad[:MAX_SHOWN])) + (" ..." if len(bad) > MAX_SHOWN else "")
        problems.add(str(p), f"{len(bad)} row(s) with a different number of fields than the header "
                             f"(lines {shown})")
        return None
    try:
        df = pd.read_csv(io.StringIO(text), low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        problems.add(str(p), f"not valid CSV ({str(err).strip().splitlines()[0]})")
        return None
    return df


def _read_parquet(p: Path, problems: Problems) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(p)
    except Exception as err:
        problems.add(str(p), f"not a readable Parquet file ({type(err).__name__}: "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no detail'})")
        return None


def read_log(path, *, what: str = "experiment log") -> pd.DataFrame:
    """Load a log (or history) from ``.csv``, ``.csv.gz`` or ``.parquet``; any unreadable file
    raises :class:`InputError` naming it and the problem."""
    p = Path(path)
    problems = Problems()
    if not p.exists():
        problems.add(str(p), "file not found")
    elif not p.is_file():
        problems.add(str(p), "not a file")
    elif p.suffix == ".parquet":
        df = _read_parquet(p, problems)
    elif p.suffix == ".csv" or p.name.endswith(".csv.gz"):
        df = _read_csv(p, problems)
    else:
        problems.add(str(p), "expected a .csv, .csv.gz or .parquet file")
    problems.raise_if_any(what=what)
    if df is None or df.shape[1] == 0:
        raise InputError([f"{p}: no columns"], what=what)
    if len(df) == 0:
        raise InputError([f"{p}: a header but no rows"], what=what)
    dup = [c for c in df.columns if str(c).startswith("Unnamed: ")]
    if dup:
        raise InputError([f"{p}: {len(dup)} column(s) without a name in the header"], what=what)
    return df


def numeric_column(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for missing, mask of present-but-unreadable values: text that is not a
    number or a boolean word, and infinities)."""
    if s.dtype == bool or str(s.dtype) == "boolean":
        return s.astype("float64").to_numpy(), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        v = s.astype("float64").to_numpy()
        bad = np.isinf(v)
        return np.where(bad, np.nan, v), bad
    as_bool = s.astype("string").str.strip().str.lower().map(_TRUE)
    v = pd.to_numeric(s, errors="coerce").astype("float64")
    v = v.where(v.notna(), as_bool.astype("float64")).to_numpy()
    bad = s.notna().to_numpy() & ~np.isfinite(v)
    return np.where(bad, np.nan, v), bad
