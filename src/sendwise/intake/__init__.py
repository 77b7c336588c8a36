"""Segment-compatible event intake: calls in (HTTP Tracking API), the event log, and its sync
into the warehouse (docs/integration.md)."""
