"""The two learners every classifier tries: logistic regression and LightGBM.

Both speak pandas frames of numeric features, give raw log-odds (``decision``), per-feature
contributions in log-odds (``contributions``: LightGBM's native tree SHAP, exact linear terms for
the logistic model) and save to files that are not pickles (LightGBM's text format, JSON).
The logistic model sees signed log1p-transformed, median-imputed, standardised features with a
missing-value indicator per column that had gaps in training, all stored as plain numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

# OpenMP threads that spin while waiting make LightGBM several times slower on a busy machine
# (measured here: 36 s instead of 6 s for one fit with two threads); sleeping waiters cost
# nothing when the cores are free. Set before LightGBM loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from sendwise.errors import InputError

PARALLEL_ROWS = 50_000
"""LightGBM predicts frames of at least this many rows on two threads."""

# Bounded search spaces: each entry is the list of values a candidate can draw.
SPACES: dict[str, dict[str, list[Any]]] = {
    "logistic": {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "class_weight": [None, "balanced"]},
    "lightgbm": {
        "num_leaves": [7, 15, 31, 63],
        "learning_rate": [0.03, 0.05, 0.1],
        "num_boost_round": [100, 200, 400],
        "min_data_in_leaf": [20, 50, 200],
        "feature_fraction": [0.6, 0.8, 1.0],
        "lambda_l2": [0.0, 1.0, 10.0],
        "balanced": [False, True],
    },
}


def as_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The features as a float64 matrix, missing values NaN; filled column by column (pandas'
    own interleaving of mixed integer, float and boolean columns is several times slower)."""
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, f in enumerate(features):
        out[:, j] = frame[f].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


class LogisticLearner:
    name: ClassVar[str] = "logistic"

    def __init__(self, features: list[str], params: dict[str, Any], threads: int = 1) -> None:
        self.features, self.params, self.threads = features, dict(params), threads

    def _transform(self, X: np.ndarray) -> np.ndarray:
        z = np.sign(X) * np.log1p(np.abs(X))
        missing = np.isnan(z)
        z = np.where(missing, self.median_, z)
        z = (z - self.mean_) / self.scale_
        return np.hstack([z, missing[:, self.gaps_].astype(np.float64)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticLearner:
        z = np.sign(X) * np.log1p(np.abs(X))
        median = np.nanmedian(np.where(np.isnan(z).all(axis=0), 0.0, z), axis=0)
        self.median_ = np.nan_to_num(median)
        self.gaps_ = np.isnan(z).any(axis=0)
        filled = np.where(np.isnan(z), self.median_, z)
        self.mean_ = filled.mean(axis=0)
        scale = filled.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        model = LogisticRegression(
            C=self.params["C"], class_weight=self.params["class_weight"], max_iter=2000
        )
        with threadpool_limits(limits=self.threads):
            model.fit(self._transform(X), y)
        self.coef_, self.intercept_ = model.coef_[0].copy(), float(model.intercept_[0])
        return self

    def decision(self, X: np.ndarray) -> np.ndarray:
        return self._transform(X) @ self.coef_ + self.intercept_

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per feature: its term of the linear score (its missing indicator folded in), and the
        intercept last, as LightGBM's ``pred_contrib`` lays them out."""
        terms = self._transform(X) * self.coef_
        n = len(self.features)
        per_feature = terms[:, :n].copy()
        per_feature[:, np.flatnonzero(self.gaps_)] += terms[:, n:]
        return np.hstack([per_feature, np.full((len(X), 1), self.intercept_)])

    def importance(self) -> np.ndarray:
        return np.abs(self.coef_[: len(self.features)])

    def save(self, folder: Path) -> str:
        state = {
            "learner": self.name,
            "params": self.params,
            "features": self.features,
            **{k: getattr(self, k).tolist() for k in ("median_", "gaps_", "mean_", "scale_")},
            "coef_": self.coef_.tolist(),
            "intercept_": self.intercept_,
        }
        (folder / "model.json").write_text(json.dumps(state))
        return "model.json"

    @classmethod
    def load(cls, folder: Path) -> LogisticLearner:
        state = json.loads((folder / "model.json").read_text())
        obj = cls(state["features"], state["params"])
        for key in ("median_", "mean_", "scale_", "coef_"):
            setattr(obj, key, np.asarray(state[key], dtype=np.float64))
        obj.gaps_ = np.asarray(state["gaps_"], dtype=bool)
        obj.intercept_ = float(state["intercept_"])
        return obj


class LightGBMLearner:
    name: ClassVar[str] = "lightgbm"

    def __init__(
        self,
        features: list[str],
        params: dict[str, Any],
        threads: int = 2,
        objective: str = "binary",
        seed: int = 0,
    ) -> None:
        self.features, self.params, self.threads = features, dict(params), threads
        self.objective, self.seed = objective, seed

    def _lgb_params(self, y: np.ndarray) -> dict[str, Any]:
        p = {k: v for k, v in self.params.items() if k not in ("num_boost_round", "balanced")}
        p.update(
            objective=self.objective,
            num_threads=self.threads,
            verbosity=-1,
            seed=self.seed,
            deterministic=True,
            force_row_wise=True,
        )
        if self.params.get("balanced") and self.objective == "binary":
            positives = max(float(y.sum()), 1.0)
            p["scale_pos_weight"] = (len(y) - positives) / positives
        return p

    def fit(self, X: np.ndarray, y: np.ndarray) -> LightGBMLearner:
        data = lgb.Dataset(X, label=y, feature_name=_safe_names(self.features), free_raw_data=True)
        rounds = int(self.params.get("num_boost_round", 200))
        self.booster_ = lgb.train(self._lgb_params(y), data, num_boost_round=rounds)
        return self

    def decision(self, X: np.ndarray) -> np.ndarray:
        # Prediction splits rows between threads with no waiting: two pay off on large frames
        # even where training on small samples keeps to one.
        threads = max(self.threads, 2) if len(X) >= PARALLEL_ROWS else self.threads
        return np.asarray(self.booster_.predict(X, raw_score=True, num_threads=threads))

    def contributions(self, X: np.ndarray, method: str = "shap") -> np.ndarray:
        """Per-feature log-odds contributions, the bias last; both methods add up to the raw
        score. ``shap``: LightGBM's exact tree SHAP. ``path``: each split on a row's path
        credits its feature with the change of the node's mean value (Saabas); many times
        faster on large shops, a little biased toward splits near the root."""
        if method == "path":
            return path_contributions(self.booster_, X, len(self.features), self.threads)
        return np.asarray(self.booster_.predict(X, pred_contrib=True, num_threads=self.threads))

    def importance(self) -> np.ndarray:
        return self.booster_.feature_importance(importance_type="gain")

    def save(self, folder: Path) -> str:
        self.booster_.save_model(str(folder / "model.txt"))
        meta = {
            "learner": self.name,
            "params": self.params,
            "features": self.features,
            "objective": self.objective,
        }
        (folder / "learner.json").write_text(json.dumps(meta))
        return "model.txt"

    @classmethod
    def load(cls, folder: Path) -> LightGBMLearner:
        meta = json.loads((folder / "learner.json").read_text())
        obj = cls(meta["features"], meta["params"], objective=meta["objective"])
        obj.booster_ = lgb.Booster(model_file=str(folder / "model.txt"))
        return obj


def path_contributions(booster: lgb.Booster, X: np.ndarray, n_features: int, threads: int):
    """Saabas path attributions from the leaf each row reaches in each tree (vectorised per
    tree: the path, hence the credit, is a function of the leaf)."""
    leaves = np.asarray(booster.predict(X, pred_leaf=True, num_threads=threads)).reshape(len(X), -1)
    leaves = np.asfortranarray(leaves.astype(np.int32))  # one contiguous column per tree
    out = np.zeros((len(X), n_features + 1), order="F")  # one contiguous column per feature
    for t, tree in enumerate(booster.dump_model()["tree_info"]):
        root = tree["tree_structure"]
        if "leaf_index" in root:  # a tree without a split adds a constant
            out[:, -1] += root["leaf_value"]
            continue
        out[:, -1] += root["internal_value"]
        credit: dict[tuple[int, int], float] = {}
        stack: list[tuple[dict[str, Any], float, tuple[tuple[int, float], ...]]] = [
            (root, root["internal_value"], ())
        ]
        while stack:
            node, value, path = stack.pop()
            if "leaf_index" in node:
                for f, delta in path:
                    key = (node["leaf_index"], f)
                    credit[key] = credit.get(key, 0.0) + delta
                continue
            for child in (node["left_child"], node["right_child"]):
                child_value = (
                    child["leaf_value"] if "leaf_index" in child else child["internal_value"]
                )
                stack.append(
                    (child, child_value, (*path, (node["split_feature"], child_value - value)))
                )
        by_feature: dict[int, np.ndarray] = {}
        for (leaf, f), delta in credit.items():
            by_feature.setdefault(f, np.zeros(tree["num_leaves"]))[leaf] = delta
        reached = leaves[:, t]
        for f, per_leaf in by_feature.items():
            out[:, f] += per_leaf[reached]
    return out  # column-major: callers index it, a row-major copy cost seconds on a million


LEARNERS: dict[str, Any] = {"logistic": LogisticLearner, "lightgbm": LightGBMLearner}


def make_learner(name: str, features: list[str], params: dict[str, Any], **kw: Any):
    if name not in LEARNERS:
        raise InputError(f"unknown learner {name!r}; known: {', '.join(LEARNERS)}")
    if name == "logistic":
        kw.pop("seed", None)
        kw.pop("objective", None)
    return LEARNERS[name](features, params, **kw)


def load_learner(folder: Path):
    name = "lightgbm" if (folder / "model.txt").exists() else "logistic"
    return LEARNERS[name].load(folder)


def sample_params(name: str, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` distinct candidates drawn from the bounded space (fewer if the space is smaller)."""
    space = SPACES[name]
    seen, out = set(), []
    for _ in range(n * 20):
        cand = {k: v[int(rng.integers(len(v)))] for k, v in space.items()}
        key = json.dumps(cand, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(cand)
        if len(out) == n:
            break
    return out


def _safe_names(features: list[str]) -> list[str]:
    # LightGBM refuses some characters in feature names; ours are snake_case already.
    return [f.replace(" ", "_") for f in features]
