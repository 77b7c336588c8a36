"""The starter journeys that ship with sendwise (welcome series, abandoned cart, post-purchase,
win-back), copied by ``sendwise init`` into the project's ``journeys/`` folder.

Their templates are content starters (``sendwise.content.starters``), so a new project can run
``sendwise journey create journeys/abandoned_cart.toml`` at once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FOLDER = Path(__file__).parent
NAMES: tuple[str, ...] = ("welcome", "abandoned_cart", "post_purchase", "win_back")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "welcome": ("welcome-offer.html", "welcome.html"),
    "abandoned_cart": ("abandoned-cart.html", "abandoned-cart-last.html"),
    "post_purchase": ("post-purchase.html",),
    "win_back": ("win-back.html",),
}
"""The content templates each starter sends (all of them content starters)."""


def starter_path(name: str) -> Path:
    return FOLDER / f"{name}.toml"


def copy_journey_starters(target: Path) -> list[Path]:
    """Copy the starter journeys into ``target``; files that exist there are kept (a user's
    edits are never overwritten). Returns the files copied."""
    copied = []
    for name in NAMES:
        dest = target / f"{name}.toml"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(starter_path(name), dest)
            copied.append(dest)
    return copied
