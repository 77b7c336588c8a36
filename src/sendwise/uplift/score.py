"""Scoring a file: each row of a CSV gets the model's ``uplift``, from its feature columns only.

The features are parsed from the named columns (for the ``hillstrom`` layout, the columns of
``data.HILLSTROM_FEATURES``); the arm and outcome columns, if the file has them, are never
parsed and never reach the model. Each input record is written out unchanged with ``uplift``
appended, in input order, so the file can be judged against outcomes the model never saw.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sendwise.errors import InputError
from sendwise.predict.registry import ModelVersion
from sendwise.uplift.data import _open, read_hillstrom_features


def features_of(path: Path, mv: ModelVersion) -> pd.DataFrame:
    layout = mv.metadata["layout"]
    if layout == "hillstrom":
        return read_hillstrom_features(path)
    columns = tuple(mv.metadata["features"])
    raw = _open(path, columns)
    out = raw.apply(lambda s: pd.to_numeric(s.str.strip(), errors="coerce"))
    bad = out.isna() & raw.ne("")
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise InputError(
            f"line {row + 2}, column {columns[col]}: {raw.iat[row, col]!r} is not a number"
        )
    return out.astype(np.float64)


def score_file(model: Any, mv: ModelVersion, source: Path, target: Path) -> int:
    """Write ``target``: every record of ``source`` plus its uplift. Returns the row count.
    The output is written beside the target and renamed, so a failure leaves no half file."""
    X = features_of(source, mv)
    uplift = model.predict(X[list(mv.metadata["features"])].to_numpy(np.float64))
    target = Path(target)
    if target.resolve() == Path(source).resolve():
        raise InputError("the scored file must not overwrite its source")
    tmp = target.with_name(target.name + ".part")
    with (
        open(source, newline="", encoding="utf-8") as fin,
        open(tmp, "w", newline="", encoding="utf-8") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout)
        header = next(reader)
        if "uplift" in header:
            raise InputError(f"{Path(source).name} already has an uplift column")
        writer.writerow([*header, "uplift"])
        count = 0
        for record in reader:
            if not record:
                continue
            if count < len(uplift):
                writer.writerow([*record, repr(float(uplift[count]))])
            count += 1
    if count != len(uplift):
        tmp.unlink()
        raise InputError(f"{Path(source).name}: {count} records but {len(uplift)} feature rows")
    tmp.replace(target)
    return count
