"""sendwise: predictive email personalization you run yourself."""

__version__ = "0.1.0"
