"""The web console's library side: users and roles, sessions, the audit log, and what each page
shows, read from the operational store and the published snapshot (never the warehouse, except
in the batch jobs a marketer starts: planning and sending a campaign, computing its results).

The pages themselves are a thin shell in :mod:`sendwise.api.console` (docs/console.md).
"""
