"""A signing key for tests that build DeliverySettings by hand (a project made by init_project
has its own). Random per process: a key written in the source would be a published one."""

from __future__ import annotations

import secrets

KEY = secrets.token_urlsafe(32)
