"""Predictions of future customer value: "buy till you die" models fitted by maximum likelihood.

- :class:`BetaGeoFitter`: BG/NBD purchase counts and probability alive (Fader, Hardie & Lee 2005).
- :class:`GammaGammaFitter`: spend per transaction and customer lifetime value.
- :func:`summary_from_transactions`: frequency / recency / T (in weeks) from a transaction log.

Fitted models serialise with ``to_dict()`` / ``from_dict()`` (plain JSON values, no pickle).
"""

from __future__ import annotations

from sendwise.predict.btyd import BetaGeoFitter, GammaGammaFitter
from sendwise.predict.common import simulate_bgnbd, summary_from_transactions

__all__ = ["BetaGeoFitter", "GammaGammaFitter", "simulate_bgnbd", "summary_from_transactions"]
