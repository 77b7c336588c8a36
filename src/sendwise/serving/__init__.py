"""The serving plane: snapshots published from the warehouse, live profiles, live scores and
recommendations, open-time content (docs/serving.md), and outgoing webhooks
(:mod:`sendwise.serving.hooks`, docs/webhooks.md)."""
