"""The serving plane's library: what the HTTP service and its background tasks do
(outgoing webhooks in :mod:`sendwise.serving.hooks`)."""
