"""The one error tree of sendwise.

Every error the library raises on purpose derives from :class:`SendwiseError`; the CLI turns
any of them into one message and a non-zero exit code, the HTTP service into a status code.

    SendwiseError
    ├── ConfigError                bad or missing settings, sendwise.toml problems
    ├── ProjectError               no project folder, or one that cannot be created
    ├── InputError                 a user's input cannot be used at all
    │   ├── SourceNotFoundError    a file or folder that does not exist
    │   ├── UnknownPresetError     --preset names no known layout
    │   ├── UnknownTableError      --table names no canonical table
    │   ├── MappingError           a column mapping names columns the file lacks
    │   ├── FormatError            a file whose format cannot be read at all
    │   ├── NotFoundError          a named thing (customer, profile, ...) does not exist
    │   ├── CampaignError          a campaign definition or state that cannot be used
    │   ├── JourneyError           a journey definition that cannot be used (journeys/)
    │   ├── IntakeError            a Segment call that cannot be accepted (intake/calls.py)
    │   ├── TrackingError          a tracking link or webhook that cannot be accepted
    │   │   └── SignatureError     a signature that does not verify (nothing is recorded)
    │   ├── RuleError              a segment rule that cannot be compiled (segments/errors.py)
    │   ├── SegmentError           segments or a features table that cannot be used (same)
    │   ├── TemplateError          a template that cannot be compiled or rendered
    │   │   │                      (content/errors.py)
    │   │   └── UnsafeTemplateError    a template that tries what the sandbox forbids (same)
    │   └── NothingToJudgeError    no purchase in a recommendation evaluation window
    │                              (recommend/evaluate.py)
    ├── WarehouseError             the warehouse cannot be reached or is not in the expected shape
    ├── StoreError                 the operational store cannot be reached or migrated
    │   └── StoreUnavailable       the store did not answer a tracking write (tracking/recorder.py)
    ├── DeliveryError              a messenger is misconfigured or refuses every message
    ├── AccessError                an API request whose key does not allow it (api/auth.py)
    │   ├── AuthenticationError    no key, or one that is wrong or revoked (401)
    │   ├── ScopeError             a live key of a scope that does not allow the call (403)
    │   └── RateLimitedError       the key spent its rate (429, with Retry-After)
    ├── ModelError                 a model file is missing, changed or does not fit the data
    │                              (predict/registry.py)
    └── DataQualityError           a check configured as hard failed during a build

tests/test_errors.py checks this drawing against the classes: a new error class goes here too.

Row-level problems are not errors: a bad row is an expected outcome, stored in ``reject``
with its reason, and the load goes on.
"""

from __future__ import annotations


class SendwiseError(Exception):
    """Root of every error sendwise raises on purpose."""


class ConfigError(SendwiseError):
    """Settings are missing, malformed or contradictory."""


class ProjectError(SendwiseError):
    """The project folder is missing or unusable."""


class InputError(SendwiseError):
    """Input supplied by the user cannot be used."""


class SourceNotFoundError(InputError):
    def __init__(self, path: object) -> None:
        self.path = str(path)
        super().__init__(f"no such file or folder: {self.path}")


class UnknownPresetError(InputError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown preset {name!r}; known presets: {', '.join(sorted(known))}")


class UnknownTableError(InputError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown table {name!r}; tables you can load: {', '.join(known)}")


class MappingError(InputError):
    """A column mapping does not fit the file it is applied to."""


class FormatError(InputError):
    """A file cannot be parsed as the format it claims to be."""


class WarehouseError(SendwiseError):
    """The warehouse cannot be reached, or its tables are not what sendwise expects."""


class DataQualityError(SendwiseError):
    """A data quality check configured as hard failed; the build stopped."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__("data quality check failed: " + "; ".join(failures))


class NotFoundError(InputError):
    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} {key!r}" + (f"; {hint}" if hint else ""))


class StoreError(SendwiseError):
    """The operational store cannot be reached, or its schema cannot be brought up to date."""


class CampaignError(InputError):
    """A campaign definition that cannot be used, or a command its state does not allow."""


class JourneyError(InputError):
    """A journey definition (or a request about a journey) that cannot be used; one line
    naming the problem (docs/journeys.md)."""


class DeliveryError(SendwiseError):
    """A messenger is misconfigured or cannot deliver at all (not one message's failure)."""


class AccessError(SendwiseError):
    """An API request whose key does not allow it."""


class AuthenticationError(AccessError):
    """No API key, or one that is wrong or revoked: nothing is done or stored."""


class ScopeError(AccessError):
    """A live API key whose scope does not allow the call."""


class RateLimitedError(AccessError):
    """The key has spent its rate; ``retry_after`` seconds until it may call again."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many requests for this key: retry in {retry_after:.2f} s")


class TrackingError(InputError):
    """A tracking link or webhook that cannot be accepted (forged, altered, unsigned, stale)."""


class IntakeError(InputError):
    """A Segment call (or batch) that cannot be accepted: ``field`` names what is wrong,
    ``index`` the position of the call in a batch (None for a single call)."""

    def __init__(self, field: str, problem: str, index: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.index = index
        where = f"batch[{index}].{field}" if index is not None else field
        super().__init__(f"{where}: {problem}")


class SignatureError(TrackingError):
    """A signature that does not verify: the request is refused and nothing is recorded."""
