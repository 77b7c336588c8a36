"""The campaign definition file (TOML or YAML) and its validation.

```toml
name = "Spring sale"
sender = "Shop <news@shop.example>"      # optional; delivery.sender by default
holdout = 10                              # percent of the audience that receives nothing
send_at = "now"                           # "now", an ISO time, or "best_hour"

[audience]
segment = "Champions"                     # a segment name, or:
# rule = "p_purchase > 0.5 and country == 'UK'"
# uplift = { model = "uplift_a_conversion", top = 30 }   # optional: top 30% by uplift

[[variants]]
name = "A"
template = "spring_a"
share = 45                                # percent; variants + holdout = 100

[[variants]]
name = "B"
template = "spring_b"
share = 45
```
Adaptive allocation (Thompson sampling in waves, see campaigns/waves.py): give the variants no
``share`` and add

```toml
[allocation]
method = "thompson"                       # "fixed" (the default) uses the shares above
waves = 5                                 # the audience is sent in 5 waves ...
every = "1d"                              # ... one a day ("30m", "12h", "2d")
metric = "click"                          # or "conversion": what the variants compete on
floor = 0.05                              # each variant keeps at least 5% of a wave
```
A campaign with one message needs no ``[[variants]]``: ``template = "spring"`` makes variant
"A" with the whole non-holdout share.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sendwise.errors import CampaignError, SourceNotFoundError

HOLDOUT = "holdout"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpliftTarget(_Model):
    model: str = Field(min_length=1, max_length=100)
    """An uplift model of the registry (``sendwise uplift train-campaign``), for this email."""
    top: float = Field(gt=0, le=100)
    """Percent of the audience to target by predicted uplift (see uplift/targeting.py: half
    the audience is targeted by uplift, the other half at random, to prove the gain)."""


class Audience(_Model):
    segment: str | None = None
    """A segment name: an RFM segment, a rule segment (built-in or sendwise.toml) or a cluster."""
    rule: str | None = None
    """A rule over profile fields in the segment rule language."""
    uplift: UpliftTarget | None = None
    """Only the top percent of the segment or rule's customers by predicted uplift."""

    @model_validator(mode="after")
    def _one_of(self) -> Audience:
        if (self.segment is None) == (self.rule is None):
            raise ValueError("give exactly one of audience.segment or audience.rule")
        return self


class Variant(_Model):
    name: str = Field(min_length=1, max_length=64)
    template: str | None = None
    share: float | None = Field(default=None, ge=0, le=100)
    """Percent of the audience; variants without one split what is left equally."""

    @field_validator("name")
    @classmethod
    def _not_holdout(cls, v: str) -> str:
        if v.strip().lower() == HOLDOUT:
            raise ValueError("'holdout' is reserved; set the holdout share with `holdout = N`")
        return v.strip()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0}


class Allocation(_Model):
    method: Literal["fixed", "thompson"] = "fixed"
    """"fixed": the variants' shares; "thompson": Thompson sampling in waves."""
    waves: int = Field(default=5, ge=2, le=100)
    """How many waves the audience (holdout aside) is sent in."""
    every: str = "1d"
    """The time between two waves: a number and m, h or d ("12h")."""
    metric: Literal["click", "conversion"] = "click"
    """The 0/1 outcome the variants compete on, counted as campaign results count it."""
    floor: float = Field(default=0.05, ge=0, le=0.5)
    """The least share of a wave that each variant keeps (exploration)."""

    @field_validator("every")
    @classmethod
    def _duration(cls, v: str) -> str:
        hit = _DURATION.match(v)
        if hit is None or float(hit.group(1)) <= 0:
            raise ValueError(f"{v!r} is not a positive duration such as '30m', '12h' or '1d'")
        return v.strip()

    @property
    def interval(self) -> timedelta:
        hit = _DURATION.match(self.every)
        assert hit is not None  # validated
        return timedelta(hours=float(hit.group(1)) * _UNIT_HOURS[hit.group(2)])


class CampaignDefinition(_Model):
    name: str = Field(min_length=1, max_length=200)
    audience: Audience
    template: str | None = None
    """The template of a single-variant campaign."""
    variants: list[Variant] = Field(default_factory=list)
    holdout: float = Field(default=0, ge=0, lt=100)
    """Percent of the audience held out: assigned, recorded, never sent anything."""
    send_at: str = "now"
    """"now", an ISO 8601 time (UTC unless it has an offset), or "best_hour" (each customer's
    predicted best send hour, in their time zone)."""
    sender: str | None = None
    frequency_cap: int | None = Field(default=None, ge=1)
    """Overrides campaigns.frequency_cap for this campaign."""
    topic: str | None = None
    """The preference-center topic (privacy.topics): people who declined it are skipped."""
    quiet_hours: bool = True
    """Respect campaigns.quiet_start/quiet_end in each customer's time zone."""
    allocation: Allocation = Field(default_factory=Allocation)
    """How the variants share the audience: fixed shares, or Thompson sampling in waves."""

    @property
    def adaptive(self) -> bool:
        return self.allocation.method == "thompson"

    @model_validator(mode="after")
    def _variants(self) -> CampaignDefinition:
        if self.adaptive:
            self._check_adaptive()
        if not self.variants:
            if self.template is None:
                raise ValueError("give a template, or [[variants]] each with a template")
            self.variants = [Variant(name="A", template=self.template, share=100 - self.holdout)]
        missing = [v.name for v in self.variants if not v.template]
        if missing:
            raise ValueError(f"variant {', '.join(missing)} has no template")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("two variants have the same name")
        given = sum(v.share for v in self.variants if v.share is not None)
        open_ = [v for v in self.variants if v.share is None]
        rest = 100 - self.holdout - given
        if open_:
            for v in open_:
                v.share = rest / len(open_)
            rest = 0
        if not math.isclose(rest, 0, abs_tol=1e-9) or any(
            (v.share or 0) < 0 for v in self.variants
        ):
            total = given + self.holdout
            raise ValueError(
                f"variant shares ({given:g}%) and holdout ({self.holdout:g}%) add up to "
                f"{total:g}%, not 100%"
            )
        self.send_time()  # refuse a bad send_at now
        return self

    def _check_adaptive(self) -> None:
        k = len(self.variants)
        if k < 2:
            raise ValueError("allocation 'thompson' needs two or more [[variants]]")
        equal = (100 - self.holdout) / k  # what wave 1 uses (and what a stored definition holds)
        if any(v.share is not None and not math.isclose(v.share, equal) for v in self.variants):
            raise ValueError(
                "allocation 'thompson' chooses the variants' shares; remove their `share` "
                "(the holdout is set with `holdout = N`)"
            )
        if any(v.name.startswith("(") for v in self.variants):
            raise ValueError("under allocation 'thompson' a variant name cannot start with '('")
        if self.allocation.floor * k > 1:
            raise ValueError(
                f"allocation.floor {self.allocation.floor:g} for {k} variants exceeds a whole wave"
            )
        if self.audience.uplift is not None:
            raise ValueError("allocation 'thompson' cannot be combined with audience.uplift yet")

    @property
    def campaign_id(self) -> str:
        return campaign_id(self.name)

    def arms(self) -> list[tuple[str, float]]:
        """(arm, share in percent) in a fixed order: the variants, then the holdout."""
        arms = [(v.name, float(v.share or 0)) for v in self.variants]
        return arms + ([(HOLDOUT, self.holdout)] if self.holdout else [])

    def template_of(self, variant: str) -> str | None:
        return next((v.template for v in self.variants if v.name == variant), None)

    def send_time(self) -> datetime | str:
        """A UTC (naive) time, or "now" / "best_hour"."""
        if self.send_at in ("now", "best_hour"):
            return self.send_at
        try:
            when = datetime.fromisoformat(self.send_at)
        except ValueError:
            raise ValueError(
                f"send_at {self.send_at!r} is not 'now', 'best_hour' or an ISO time"
            ) from None
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        return when


def campaign_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    if not slug:
        raise CampaignError(f"campaign name {name!r} needs at least one letter or digit")
    return slug


def parse_definition(data: dict[str, Any], source: str = "campaign") -> CampaignDefinition:
    """A validated definition; CampaignError listing each problem with its field."""
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "")
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise CampaignError(f"{source}: {problems}") from None


def load_definition(path: str | Path) -> CampaignDefinition:
    """Read a campaign definition from a .toml, .yaml or .yml file."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CampaignError(f"{path}: cannot be read: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise CampaignError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: a campaign definition is a table of settings")
    return parse_definition(data, str(path))
