"""Tracking: opens, clicks and unsubscribes from signed links, ESP webhooks, machine-open and
bot-click detection, and the sync of the store's events into the warehouse."""

from sendwise.tracking.machines import flag_click_bursts, is_machine
from sendwise.tracking.recorder import EventRecorder, write_events

__all__ = ["EventRecorder", "flag_click_bursts", "is_machine", "write_events"]
