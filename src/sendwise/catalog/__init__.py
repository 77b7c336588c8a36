"""The product catalogue's derived knowledge: categories for shops that have none.

See docs/models.md (next_category) and docs/adr/0078-derived-categories.md.
"""

from sendwise.catalog.categories import (
    CategoryBuild,
    derive_product_categories,
    ensure_product_categories,
    product_categories,
)
from sendwise.catalog.derive import CategoryDeriver

__all__ = [
    "CategoryBuild",
    "CategoryDeriver",
    "derive_product_categories",
    "ensure_product_categories",
    "product_categories",
]
