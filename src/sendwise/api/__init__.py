"""The sendwise HTTP service (FastAPI): tracking endpoints and ESP webhooks."""

from sendwise.api.app import create_app

__all__ = ["create_app"]
