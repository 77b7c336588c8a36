"""Point-in-time customer features, training sets and data quality checks.

Every feature is computed as of a moment ``as_of`` from data strictly before it: nothing that
happened at or after ``as_of`` can change a feature (tests append such rows to prove it).
"""

from sendwise.features.build import FEATURE_DOCS, WINDOWS, customer_features
from sendwise.features.training import stacked_training_set, training_set

__all__ = ["FEATURE_DOCS", "WINDOWS", "customer_features", "stacked_training_set", "training_set"]
