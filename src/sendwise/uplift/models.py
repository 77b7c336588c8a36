"""Uplift models with the scikit-learn contract, on LightGBM.

``fit(X, y, treatment)`` (scikit-uplift's order) learns from a randomised experiment and returns
``self``; ``predict(X)`` gives each row's estimated effect of the email on the outcome: the
difference between its expected outcome when sent and when held out.

* :class:`TLearner` (two models): one classifier on the treated rows, one on the held-out rows;
  the uplift is the difference of their probabilities.
* :class:`ClassTransformation` (Jaszewska & Lai): one classifier of ``z = y if treated else
  1 - y``; with equal arms ``uplift = 2 P(z = 1) - 1``. Unequal arms are reweighted to equal
  weight first (each arm's rows carry weight 0.5 / its share), which keeps the identity exact.
* :class:`XLearner` (Künzel et al. 2019): the two models of the T-learner impute each row's
  individual effect from the other arm's model, two regressors learn those effects, and they
  are blended by the share of treated rows (the propensity of a randomised experiment).

The learned boosters are kept as LightGBM text, so ``to_dict`` / ``from_dict`` round-trip a
model through JSON without pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from sendwise.errors import InputError
from sendwise.predict.registry import ModelError

FORMAT = 1


class _UpliftBase(BaseEstimator, ABC):
    kind: ClassVar[str] = ""
    booster_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.02,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 5.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state

    # --- LightGBM -------------------------------------------------------------------------
    def _lgb_params(self, objective: str) -> dict[str, Any]:
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "verbosity": -1,
            "deterministic": True,
            "force_row_wise": True,
        }

    def _train(
        self, X: np.ndarray, target: np.ndarray, objective: str, weight: np.ndarray | None = None
    ) -> lgb.Booster:
        data = lgb.Dataset(X, target, weight=weight, free_raw_data=True)
        return lgb.train(self._lgb_params(objective), data, num_boost_round=self.n_estimators)

    # --- the contract ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, treatment: Any) -> _UpliftBase:
        X, y = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True, reset=True
        )
        t = np.asarray(treatment)
        if t.shape != y.shape or not np.isin(t, (0, 1)).all():
            raise InputError("treatment must be a 0/1 vector as long as y")
        t = t.astype(np.int8)
        counts = np.bincount(t, minlength=2)
        if counts.min() < 2 * self.min_child_samples:
            raise InputError(
                f"too few rows in an arm to learn from: {counts[1]} sent, {counts[0]} held out"
            )
        if not np.isin(y, (0, 1)).all():
            raise InputError("the outcome must be 0/1 (visit, conversion); got other values")
        self.treated_share_ = float(t.mean())
        self.boosters_ = self._fit(X, y.astype(np.float64), t)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return self._predict(X)

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, lgb.Booster]: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    # --- JSON, no pickle -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self)
        return {
            "model": self.kind,
            "format": FORMAT,
            "params": self.get_params(),
            "n_features_in": int(self.n_features_in_),
            "treated_share": self.treated_share_,
            "boosters": {k: b.model_to_string() for k, b in self.boosters_.items()},
        }


class TLearner(_UpliftBase):
    kind = "t_learner"
    booster_names = ("treated", "control")

    def _fit(self, X, y, t):
        return {
            "treated": self._train(X[t == 1], y[t == 1], "binary"),
            "control": self._train(X[t == 0], y[t == 0], "binary"),
        }

    def _predict(self, X):
        return self.boosters_["treated"].predict(X) - self.boosters_["control"].predict(X)


class ClassTransformation(_UpliftBase):
    kind = "class_transformation"
    booster_names = ("z",)

    def _fit(self, X, y, t):
        z = np.where(t == 1, y, 1.0 - y)
        share = t.mean()
        weight = np.where(t == 1, 0.5 / share, 0.5 / (1 - share))
        return {"z": self._train(X, z, "binary", weight)}

    def _predict(self, X):
        return 2.0 * self.boosters_["z"].predict(X) - 1.0


class XLearner(_UpliftBase):
    kind = "x_learner"
    booster_names = ("treated", "control", "effect_treated", "effect_control")

    def _fit(self, X, y, t):
        sent, held = t == 1, t == 0
        m1 = self._train(X[sent], y[sent], "binary")
        m0 = self._train(X[held], y[held], "binary")
        d1 = y[sent] - m0.predict(X[sent])  # what the email added for those sent
        d0 = m1.predict(X[held]) - y[held]  # what it would have added for those held out
        return {
            "treated": m1,
            "control": m0,
            "effect_treated": self._train(X[sent], d1, "regression"),
            "effect_control": self._train(X[held], d0, "regression"),
        }

    def _predict(self, X):
        e = self.treated_share_
        return e * self.boosters_["effect_control"].predict(X) + (1 - e) * self.boosters_[
            "effect_treated"
        ].predict(X)


LEARNERS: dict[str, type[_UpliftBase]] = {
    c.kind: c for c in (TLearner, ClassTransformation, XLearner)
}


def make_model(kind: str, **params: Any) -> _UpliftBase:
    if kind not in LEARNERS:
        raise InputError(f"unknown uplift learner {kind!r}; known: {', '.join(LEARNERS)}")
    return LEARNERS[kind](**params)


def model_from_dict(data: Mapping[str, Any]) -> _UpliftBase:
    """The model ``to_dict`` wrote; ModelError for a dict of another shape or format."""
    try:
        cls = LEARNERS[data["model"]]
        if data["format"] != FORMAT or set(data["boosters"]) != set(cls.booster_names):
            raise ModelError(
                f"uplift model file of format {data['format']} with boosters "
                f"{sorted(data['boosters'])} is not one this version reads"
            )
        model = cls(**data["params"])
        model.boosters_ = {k: lgb.Booster(model_str=v) for k, v in data["boosters"].items()}
        model.treated_share_ = float(data["treated_share"])
        model.n_features_in_ = int(data["n_features_in"])
    except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
        raise ModelError(f"not an uplift model file ({type(exc).__name__}: {exc})") from None
    return model
