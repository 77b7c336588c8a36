"""Uplift: who an email persuades (models learned from experiments) and adaptive allocation of
traffic to a campaign's variants (Thompson sampling in waves). See docs/uplift.md."""
