"""spotsim from Python: the same engine as the command line, in process.

    import spotsim
    res = spotsim.run("experiments/checkpoint-sweep.toml", replications=2000, seed=1,
                      set={"spot.capacity_wait": "1h"})
    res.summary          # pandas.DataFrame: the rows and columns of summary.csv

Results are DataFrames with the CSVs' columns and values, and the dtypes
``pandas.read_csv`` gives those CSVs (see docs/python.md).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import sys
import time
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import _native
from ._native import InputError

__all__ = ["InputError", "Result", "Recommendation", "run", "check", "recommend", "loadtest", "catalog", "profiles"]
__version__ = _native.__version__


# --- experiments: a path, TOML text or a dict --------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(v: Any) -> str:
    """A TOML value: strings, numbers, booleans, lists and inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value: {v!r}")


def to_toml(experiment: Mapping[str, Any]) -> str:
    """An experiment given as a dict, as TOML text: nested dicts become tables."""
    lines: list[str] = []

    def table(prefix: list[str], d: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in d.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        if prefix and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        lines.extend(f"{_key(str(k))} = {_value(v)}" for k, v in scalars)
        for k, v in tables:
            table(prefix + [str(k)], v)

    table([], experiment)
    return "\n".join(lines) + "\n"


def _source(path: Any, toml: Any) -> tuple[str | None, str | None]:
    if isinstance(path, Mapping):
        path, toml = None, path
    if isinstance(toml, Mapping):
        toml = to_toml(toml)
    if (path is None) == (toml is None):
        raise ValueError("give an experiment file (path) or its text or dict (toml=), not both")
    return (None if path is None else os.fspath(path)), toml


def _sets(overrides: Mapping[str, Any] | None) -> list[str]:
    """`--set PATH=VALUE` strings; a string value is passed as the command line gets it."""
    return [f"{k}={v if isinstance(v, str) else _value(v)}" for k, v in (overrides or {}).items()]


def _native_call(fn, unit, path, toml, base_dir, set, seed, threads, output, progress, *rest):
    """Calls a simulating native function with the experiment's source, the
    run's flags and a progress bar counting `unit`."""
    source = (*_source(path, toml), os.fspath(base_dir), _sets(set))
    flags = (seed, 0 if threads is None else int(threads), None if output is None else os.fspath(output))
    with _Progress(progress, unit) as bar:
        return fn(source, flags, bar, *rest)


# --- tables: column bytes from the library, dtypes as pandas.read_csv --------

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|Inf|INF|infinity|Infinity)|NaN|nan")
_BOOL = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def _numbers(a: np.ndarray) -> np.ndarray:
    """Whole finite numbers are written as integers, so read_csv gives int64."""
    if len(a) and np.isfinite(a).all() and (np.abs(a) < 1e15).all() and (a == np.trunc(a)).all():
        return a.astype(np.int64)
    return a


def _labels(labels: list[str], rows: np.ndarray) -> pd.Series:
    used = [labels[i] for i in np.unique(rows)]
    if used and all(_INT.fullmatch(x) for x in used):
        return pd.Series(np.array([int(x) for x in labels], dtype=np.int64)[rows])
    if used and all(_FLOAT.fullmatch(x) for x in used):
        return pd.Series(np.array([float(x) if _FLOAT.fullmatch(x) else math.nan for x in labels])[rows])
    if used and all(x in _BOOL for x in used):
        return pd.Series(np.array([_BOOL.get(x, False) for x in labels])[rows])
    return pd.Series(labels).take(rows.astype(np.intp)).reset_index(drop=True)


def _frame(table: tuple[list[str], list[tuple]]) -> pd.DataFrame:
    names, columns = table
    data = {}
    for name, column in zip(names, columns):
        kind, raw = column[0], column[1]
        if kind == "index":
            data[name] = pd.Series(np.frombuffer(raw, dtype=np.uint64).astype(np.int64))
        elif kind == "number":
            data[name] = pd.Series(_numbers(np.frombuffer(raw, dtype=np.float64).copy()))
        else:
            data[name] = _labels(column[2], np.frombuffer(raw, dtype=np.uint32))
    return pd.DataFrame(data, columns=names)


def _csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data))


# --- progress ----------------------------------------------------------------


class _Progress:
    """A bar that updates: tqdm's (a widget in a notebook) if tqdm is
    installed, else one text line rewritten on stderr. The library calls it
    with (done, total, experiment name) about ten times a second."""

    def __init__(self, show: bool, unit: str):
        self.show, self.unit = show, unit
        self.bar = None
        self.line = False
        self.started = time.monotonic()

    def __call__(self, done: int, total: int | None, name: str) -> None:
        if self.bar is None and not self.line:
            try:
                with warnings.catch_warnings():
                    # Without ipywidgets tqdm.auto warns, then draws text: fine.
                    warnings.simplefilter("ignore")
                    from tqdm.auto import tqdm

                    self.bar = tqdm(total=total, desc=name, unit=self.unit, unit_scale=True)
            except ImportError:
                self.line = True
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        else:
            of = f"/{total:,}" if total else ""
            rate = done / max(time.monotonic() - self.started, 1e-9)
            sys.stderr.write(f"\r{name}: {done:,}{of} {self.unit}  {rate:,.0f}/s ")
            sys.stderr.flush()

    def __enter__(self):
        return self if self.show else None

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.line:
            sys.stderr.write("\n")


# --- the calls of SPEC section 6 ---------------------------------------------


class Result:
    """A finished run: the tables of `summary.csv`, `replications.csv`,
    `timeline.csv` (None for training) and `manifest.json`."""

    def __init__(self, native):
        self._native = native
        self._tables = native.tables()

    @cached_property
    def summary(self) -> pd.DataFrame:
        return _frame(self._tables["summary.csv"])

    @cached_property
    def replications(self) -> pd.DataFrame:
        return _frame(self._tables["replications.csv"])

    @cached_property
    def timeline(self) -> pd.DataFrame | None:
        table = self._tables.get("timeline.csv")
        return None if table is None else _frame(table)

    @cached_property
    def manifest(self) -> dict:
        return json.loads(self._native.manifest())

    def write(self, dir: str | os.PathLike) -> Path:
        """Writes the files `spotsim run -o DIR` writes, with the same folder
        safety: DIR must be missing, empty or a spotsim result; it is
        replaced whole."""
        self._native.write(os.fspath(dir))
        return Path(dir)

    def __repr__(self) -> str:
        m = self.manifest
        points = len(m["experiment"]["points"])
        return f"<spotsim.Result {m['experiment']['name']}: {points} point(s) x {m['experiment']['replications']} replications>"


def run(
    path: str | os.PathLike | Mapping | None = None,
    *,
    toml: str | Mapping | None = None,
    base_dir: str | os.PathLike = ".",
    replications: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    set: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    progress: bool = True,
    allow_long: bool = False,
) -> Result:
    """Runs an experiment (a file, TOML text or a dict) as `spotsim run` does.

    `set` maps PATH to VALUE as `--set PATH=VALUE` does. `output` writes the
    result folder too (claimed before the run, as `run -o` does). Ctrl-C
    (KeyboardInterrupt) stops the run and leaves nothing behind.
    """
    native = _native_call(
        _native.run, "replications", path, toml, base_dir, set, seed, threads, output, progress, replications, allow_long
    )
    return Result(native)


def check(
    path: str | os.PathLike | Mapping | None = None,
    *,
    toml: str | Mapping | None = None,
    base_dir: str | os.PathLike = ".",
    set: Mapping[str, Any] | None = None,
) -> list[dict]:
    """The resolved designs, one dict per point, every default filled in (what
    `spotsim check` prints): `point`, `swept` (key -> value) and the tables."""
    e = json.loads(_native.check((*_source(path, toml), os.fspath(base_dir), _sets(set))))
    return [
        {"point": p["index"], "swept": dict(zip(e["swept"], p["values"])), **p["design"]} for p in e["points"]
    ]


class Recommendation:
    """What `spotsim recommend` finds: `recommendations` (rank order),
    `rounds`, `summary` (the points still in contention), `manifest`, and
    `choice`, the recommended point's row (None when nothing qualifies)."""

    def __init__(self, files: dict[str, bytes]):
        self.recommendations = _csv(files["recommendations.csv"])
        self.rounds = _csv(files["rounds.csv"])
        self.summary = _csv(files["summary.csv"])
        self.manifest = json.loads(files["manifest.json"])
        best = self.recommendations[self.recommendations["status"] == "best"]
        self.choice = None if best.empty else best.iloc[0].to_dict()

    def __repr__(self) -> str:
        return f"<spotsim.Recommendation choice={self.choice!r}>"


def recommend(
    path: str | os.PathLike | Mapping | None = None,
    *,
    toml: str | Mapping | None = None,
    base_dir: str | os.PathLike = ".",
    budget: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    set: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    progress: bool = True,
) -> Recommendation:
    """The cheapest design of the sweep that meets the [objective], as
    `spotsim recommend --budget` finds it."""
    files = _native_call(
        _native.recommend, "replications", path, toml, base_dir, set, seed, threads, output, progress, budget
    )
    return Recommendation(files)


def loadtest(
    path: str | os.PathLike | Mapping | None = None,
    *,
    toml: str | Mapping | None = None,
    base_dir: str | os.PathLike = ".",
    seed: int | None = None,
    threads: int | None = None,
    set: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Per point, the highest rate one instance sustains (loadtest.csv)."""
    files = _native_call(_native.loadtest, "points", path, toml, base_dir, set, seed, threads, output, progress)
    return _csv(files["loadtest.csv"])


def catalog() -> pd.DataFrame:
    """The instance types of the built-in catalog (`spotsim catalog`)."""
    return pd.DataFrame(_native.catalog())


def profiles() -> pd.DataFrame:
    """The built-in model profiles, one row per (profile, use, instance type)."""
    return pd.DataFrame(_native.profiles())
