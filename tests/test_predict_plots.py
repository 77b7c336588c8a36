"""Evaluation plots: valid PNG files that matplotlib reads back, and no warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from sendwise.errors import InputError
from sendwise.predict.plots import gains_curve, save_calibration, save_gains, save_roc

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 3, n)
    y = (rng.random(n) < p).astype(int)
    return y, p, rng.random(n)


def _assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels.std() > 0  # something was drawn


def test_plots_are_valid_png_files_without_warnings(tmp_path: Path) -> None:
    y, p, noise = _data()
    curves = {"model": (y, p), "random": (y, noise)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = [
            save_roc(tmp_path / "roc.png", curves),
            save_gains(tmp_path / "plots" / "gains.png", curves),
            save_calibration(str(tmp_path / "calibration.png"), y, p, bins=10),
        ]
    assert written == [tmp_path / "roc.png", tmp_path / "plots" / "gains.png",
                       tmp_path / "calibration.png"]  # fmt: skip
    for path in written:
        _assert_png(path)


def test_repeated_plots_do_not_accumulate_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt  # only to check that no pyplot figure was created

    y, p, _ = _data(500)
    for i in range(3):
        save_roc(tmp_path / f"roc{i}.png", {"m": (y, p)})
    assert plt.get_fignums() == []
    sizes = {(tmp_path / f"roc{i}.png").stat().st_size for i in range(3)}
    assert len(sizes) == 1  # same input, same picture: no state leaks between calls


def test_gains_curve_runs_from_origin_to_one() -> None:
    y, p, _ = _data(100_000)
    x, gain = gains_curve(y, p)
    assert x[0] == 0 and gain[0] == 0 and x[-1] == 1 and gain[-1] == 1
    assert len(x) <= 1002 and np.all(np.diff(gain) >= 0)


def test_plots_refuse_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no curves"):
        save_roc(tmp_path / "x.png", {})
    with pytest.raises(InputError, match="one class"):
        save_roc(tmp_path / "x.png", {"m": ([1, 1], [0.2, 0.4])})
    with pytest.raises(InputError, match="differ in length"):
        save_gains(tmp_path / "x.png", {"m": ([1, 0], [0.2])})
    assert not (tmp_path / "x.png").exists()
