"""The starter templates that ship with sendwise (welcome, abandoned cart, post-purchase,
win-back, newsletter) and the blocks and layout they share."""

from __future__ import annotations

import shutil
from pathlib import Path

FOLDER = Path(__file__).parent
NAMES: tuple[str, ...] = (
    "welcome.html",
    "welcome-offer.html",
    "abandoned-cart.html",
    "abandoned-cart-last.html",
    "post-purchase.html",
    "win-back.html",
)
NAMES += ("newsletter.html",)


def copy_starters(target: Path) -> list[Path]:
    """Copy the starters into ``target``; files that exist there are kept. Returns the new ones."""
    copied = []
    for source in sorted(FOLDER.rglob("*.html")):
        dest = target / source.relative_to(FOLDER)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            copied.append(dest)
    return copied
