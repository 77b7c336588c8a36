"""Shared parts of the buy-till-you-die models: input checks, the optimiser, dict I/O, the
per-customer summary of a transaction log (the simulators are in ``btyd_simulate``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from sendwise.errors import InputError

_LOG_BOUND = 20.0  # parameters are searched in [exp(-20), exp(20)]


def as_vector(name: str, values: Any) -> np.ndarray:
    """Finite, non-negative float array of at most one dimension, or :class:`InputError`."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric ({exc})") from None
    if arr.ndim > 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0):
        raise InputError(f"{name} contains negative values")
    return arr


def check_frequency(frequency: Any) -> np.ndarray:
    x = as_vector("frequency", frequency)
    if np.any(x != np.round(x)):
        raise InputError("frequency must hold whole numbers of repeat purchases")
    return x


def same_length(fit: bool, **arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast the arrays (predicting) or insist on equal, non-zero lengths (fitting)."""
    if fit:
        lengths = {name: a.size for name, a in arrays.items()}
        if any(a.ndim != 1 for a in arrays.values()) or len(set(lengths.values())) != 1:
            raise InputError(f"inputs must be 1-D arrays of equal length, got {lengths}")
        if not next(iter(lengths.values())):
            raise InputError("cannot fit a model on zero customers")
        return list(arrays.values())
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = {name: a.shape for name, a in arrays.items()}
        raise InputError(f"inputs have mismatched lengths: {shapes}") from None


def check_rfm(frequency: Any, recency: Any, T: Any, *, fit: bool) -> list[np.ndarray]:
    x, tx, t_end = same_length(
        fit, frequency=check_frequency(frequency), recency=as_vector("recency", recency),
        T=as_vector("T", T),
    )  # fmt: skip
    if np.any(tx > t_end):
        raise InputError(f"recency is larger than T for {int(np.sum(tx > t_end))} customer(s)")
    if np.any((x == 0) & (tx != 0)):
        raise InputError("recency must be 0 for customers with frequency 0")
    return [x, tx, t_end]


def maximise(
    loglik: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    n: float,
    penalizer: float,
    log_bounds: tuple[float, float] = (-_LOG_BOUND, _LOG_BOUND),
    shrinkage: float = 0.0,
) -> tuple[np.ndarray, float, int, bool]:
    """Maximise ``loglik(theta) -> (total, gradient)`` over log(theta) with L-BFGS-B.

    The objective is the mean negative log-likelihood plus ``penalizer * sum(theta**2)``
    (the lifetimes convention) plus ``shrinkage * sum(log(theta / start)**2)``, a log-normal
    prior centred on the starting point; log(theta) stays inside ``log_bounds``. Returns
    (theta, total log-likelihood, iterations, converged). A fit that did not converge also
    warns with :class:`~sklearn.exceptions.ConvergenceWarning`.
    """
    centre = np.log(start)

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(phi)
        ll, grad = loglik(theta)
        shift = phi - centre
        value = -ll / n + penalizer * float(theta @ theta) + shrinkage * float(shift @ shift)
        return value, (-grad / n + 2.0 * penalizer * theta) * theta + 2.0 * shrinkage * shift

    low, high = log_bounds
    bounds = [(low, high)] * len(start)
    options = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10}
    phi0 = np.clip(np.log(start), low, high)
    res = minimize(objective, phi0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options=options)  # fmt: skip
    # Polish once from the optimum: L-BFGS-B often stops on a line search near machine precision.
    first_nit = res.nit
    res = minimize(objective, res.x, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    inside = (res.x > low + 1e-6) & (res.x < high - 1e-6)
    converged = bool(np.isfinite(res.fun) and np.max(np.abs(res.jac[inside]), initial=0.0) <= 1e-5)
    if not converged:
        warnings.warn(f"maximum likelihood did not converge: {res.message}", ConvergenceWarning,
                      stacklevel=3)  # fmt: skip
    theta = np.exp(res.x)
    return theta, float(loglik(theta)[0]), int(first_nit + res.nit), converged


def numeric_gradient(
    total: Callable[[np.ndarray], float], step: float = 1e-5
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Wrap ``total(theta)`` into ``(total, gradient)`` by central differences in log(theta),
    for likelihoods whose derivatives have no convenient closed form (Pareto/NBD's 2F1)."""

    def both(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value = total(theta)
        grad = np.empty(theta.size)
        for i in range(theta.size):
            up, down = theta.copy(), theta.copy()
            up[i] *= np.exp(step)
            down[i] *= np.exp(-step)
            grad[i] = (total(up) - total(down)) / (2.0 * step) / theta[i]
        return value, grad

    return both


class FittedParamsMixin:
    """``to_dict`` / ``from_dict`` with plain JSON-able values; no pickle."""

    param_names: ClassVar[tuple[str, ...]] = ()

    def _set_params(self, theta: Any, n: float) -> None:
        """Keep a fit's parameters (in ``param_names`` order) and its number of customers."""
        self.params_ = dict(zip(self.param_names, map(float, theta), strict=True))
        self.n_customers_ = int(n)

    def _params(self) -> tuple[float, ...]:
        """The fitted parameters in ``param_names`` order."""
        check_is_fitted(self)
        return tuple(self.params_[k] for k in self.param_names)

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self)
        return {
            "model": type(self).__name__,
            "format": 1,
            "penalizer": float(self.penalizer),  # type: ignore[attr-defined]
            "shrinkage": float(getattr(self, "shrinkage", 0.0)),
            "params": {k: float(self.params_[k]) for k in self.param_names},
            "log_likelihood": float(self.log_likelihood_),  # type: ignore[attr-defined]
            "n_customers": int(self.n_customers_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        name = cls.__name__
        if not isinstance(data, Mapping):
            raise InputError(f"{name}.from_dict needs a dict, got {type(data).__name__}")
        if data.get("model") != name:
            raise InputError(f"this dict holds a {data.get('model')!r} model, not a {name}")
        params = data.get("params")
        if not isinstance(params, Mapping) or set(params) != set(cls.param_names):
            raise InputError(f"{name} params must have exactly the keys {list(cls.param_names)}")
        try:
            values = {k: float(params[k]) for k in cls.param_names}
            hyper = {"penalizer": float(data.get("penalizer", 0.0))}
            if "shrinkage" in cls().get_params():  # type: ignore[attr-defined]
                hyper["shrinkage"] = float(data.get("shrinkage", 0.0))
            model: Any = cls(**hyper)
            model.log_likelihood_ = float(data.get("log_likelihood", float("nan")))
            model.n_customers_ = int(data.get("n_customers", 0))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} dict has a non-numeric value ({exc})") from None
        if not all(np.isfinite(v) and v > 0 for v in values.values()):
            raise InputError(f"{name} params must be finite and positive, got {values}")
        model.params_ = values
        return model


def summary_from_transactions(
    customer_ids: Any,
    dates: Any,
    observation_end: Any,
    freq_days: float = 7,
    monetary: Any = None,
) -> pd.DataFrame:
    """Per-customer ``frequency``, ``recency`` and ``T`` from a transaction log (lifetimes' way).

    Transactions after ``observation_end`` are ignored; those of one customer on one calendar
    day are one purchase (amounts summed). ``frequency`` = purchase days - 1 (the first purchase
    is not a repeat), ``recency`` = days from the first to the last purchase day and ``T`` =
    days from the first purchase day to ``observation_end``, both divided by ``freq_days``
    (7: weeks). With ``monetary``, ``monetary_value`` is the mean amount of the repeat purchase
    days (first excluded; 0 when frequency is 0). Returns a frame indexed by customer id.
    """
    if not freq_days > 0:
        raise InputError(f"freq_days must be positive, got {freq_days!r}")
    try:
        days = pd.Series(np.asarray(dates))
        try:
            days = pd.to_datetime(days)
        except ValueError:  # strings in more than one layout
            days = pd.to_datetime(days, format="mixed")
        days = days.dt.normalize()
        end = pd.Timestamp(observation_end).normalize()
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot read the dates ({exc})") from None
    ids = np.asarray(customer_ids)
    value = np.zeros(len(days)) if monetary is None else as_vector("monetary", monetary)
    if ids.ndim != 1 or not len(ids) == len(days) == len(value):
        sizes = (ids.size, len(days), value.size)
        raise InputError(f"customer_ids, dates and monetary differ in length: {sizes}")
    if days.isna().any() or pd.isna(end):
        raise InputError("dates and observation_end must not be missing")
    log = pd.DataFrame({"customer": ids, "day": days.to_numpy(), "value": value})
    log = log[log["day"] <= end]
    if log.empty:
        raise InputError(f"no transactions on or before {end.date()}")
    daily = log.groupby(["customer", "day"], sort=True)["value"].sum().reset_index()
    per = daily.groupby("customer", sort=True).agg(
        first=("day", "min"), last=("day", "max"), n=("day", "size"),
        total=("value", "sum"), first_value=("value", "first"),
    )  # fmt: skip
    out = pd.DataFrame(index=per.index)
    out["frequency"] = (per["n"] - 1).astype(np.int64)
    out["recency"] = (per["last"] - per["first"]).dt.days / freq_days
    out["T"] = (end - per["first"]).dt.days / freq_days
    if monetary is not None:
        repeat = (per["total"] - per["first_value"]).to_numpy()
        x = out["frequency"].to_numpy()
        out["monetary_value"] = np.divide(repeat, x, out=np.zeros(len(x)), where=x > 0)
    return out
