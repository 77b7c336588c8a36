"""Predictions of future customer value: "buy till you die" models fitted by maximum likelihood.

- :class:`BetaGeoFitter`: BG/NBD purchase counts and probability alive (Fader, Hardie & Lee 2005).
- :class:`ModifiedBetaGeoFitter`: MBG/NBD, where one-time buyers can drop out too
  (Batislam, Denizel & Filiztekin 2007).
- :class:`ParetoNBDFitter`: Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
- :class:`GammaGammaFitter`: spend per transaction and customer lifetime value.
- :func:`fit_flags`: why a fitted purchase model is degenerate (empty when it is not).
- :func:`summary_from_transactions`: frequency / recency / T (in weeks) from a transaction log.

Fitted models serialise with ``to_dict()`` / ``from_dict()`` (plain JSON values, no pickle).
"""

from __future__ import annotations

from sendwise.predict.btyd import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
from sendwise.predict.btyd_checks import fit_flags
from sendwise.predict.btyd_pareto import ParetoNBDFitter
from sendwise.predict.btyd_simulate import simulate_bgnbd, simulate_pareto_nbd
from sendwise.predict.common import summary_from_transactions

__all__ = [
    "BetaGeoFitter",
    "GammaGammaFitter",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "fit_flags",
    "simulate_bgnbd",
    "simulate_pareto_nbd",
    "summary_from_transactions",
]
