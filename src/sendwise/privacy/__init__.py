"""Privacy operations: the consent ledger with double opt-in and a preference center, export
and erasure of one person's data from every place sendwise keeps it, the tombstone list that
keeps the erased out, objection to profiling, and retention (docs/privacy.md).

Submodules are imported where used (the send policy imports only :mod:`.hashing`).
"""
