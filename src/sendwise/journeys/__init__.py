"""Triggered journeys: definitions (:mod:`.definition`), the durable engine (:mod:`.engine`,
state in the operational store, :mod:`sendwise.store.journeys`), the live renderer
(:mod:`.render`) and the worker that runs them (:mod:`.worker`). See docs/journeys.md."""

from sendwise.journeys.definition import (
    JourneyDefinition,
    KnownNames,
    load_journey,
    loads_journey,
    validate,
)

__all__ = ["JourneyDefinition", "KnownNames", "load_journey", "loads_journey", "validate"]
