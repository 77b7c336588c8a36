"""Fixed word lists the simulated shop draws from: categories, product words, names, places.

Immutable tuples only; every random choice over them is made by the caller's generator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    median_price: float
    """Median list price (GBP) of the category's lognormal price distribution."""
    share: float
    """Share of the catalogue and, before preferences, of demand."""
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    words: tuple[str, ...]
    """Descriptive words that only this category uses, so TF-IDF can tell categories apart."""


def _category(
    name: str, price: float, share: float, adjectives: str, nouns: str, words: str
) -> Category:
    """A Category from |-separated adjectives and nouns and space-separated words."""
    return Category(
        name, price, share, tuple(adjectives.split("|")), tuple(nouns.split("|")),
        tuple(words.split()),
    )  # fmt: skip


# fmt: off
CATEGORIES: tuple[Category, ...] = (
    _category(
        "Home", 25.0, 0.16,
        "Rustic|Cosy|Nordic|Velvet|Linen|Woven",
        "Cushion|Throw|Lamp|Vase|Rug|Mirror|Candle|Curtain",
        "living room decor interior soft furnishing bedroom sofa warm accent texture shelf",
    ),
    _category(
        "Kitchen", 20.0, 0.14,
        "Ceramic|Cast-Iron|Bamboo|Copper|Nonstick|Glass",
        "Pan|Knife|Mug|Teapot|Bowl|Grater|Skillet|Chopping Board",
        "cooking chef recipe dishwasher safe oven bake kitchen stovetop utensil dining heat",
    ),
    _category(
        "Garden", 30.0, 0.1,
        "Weatherproof|Solar|Terracotta|Galvanised|Hardy|Folding",
        "Planter|Hose|Trowel|Bird Feeder|Lantern|Pruner|Seed Kit|Bench",
        "outdoor plants soil patio lawn grow flowers seeds weather balcony watering bloom",
    ),
    _category(
        "Toys", 18.0, 0.12,
        "Wooden|Plush|Magnetic|Musical|Stacking|Remote-Control",
        "Puzzle|Teddy|Train Set|Building Blocks|Doll|Kite|Robot|Board Game",
        "kids children play fun learning ages toddler family imagination educational game gift",
    ),
    _category(
        "Fashion", 35.0, 0.16,
        "Organic|Slim-Fit|Oversized|Vintage|Merino|Striped",
        "T-Shirt|Jumper|Scarf|Jeans|Jacket|Dress|Trainers|Beanie",
        "wear cotton style fit size wardrobe outfit casual fabric colour wash seasonal",
    ),
    _category(
        "Beauty", 15.0, 0.12,
        "Hydrating|Vegan|Fragrance-Free|Gentle|Brightening|Nourishing",
        "Serum|Moisturiser|Lip Balm|Shampoo|Face Mask|Cleanser|Hand Cream|Body Oil",
        "skin skincare hair glow vitamin cruelty-free formula daily routine sensitive"
        " natural scent",
    ),
    _category(
        "Electronics", 80.0, 0.1,
        "Wireless|Bluetooth|Smart|Portable|Noise-Cancelling|USB-C",
        "Headphones|Speaker|Charger|Power Bank|Smartwatch|Camera|Keyboard|Earbuds",
        "battery device charging audio connect app bluetooth hours digital screen compatible tech",
    ),
    _category(
        "Books", 12.0, 0.1,
        "Illustrated|Bestselling|Hardback|Pocket|Annotated|Collected",
        "Novel|Cookbook|Atlas|Poetry Collection|Biography|Thriller|Guide|Journal",
        "read author chapter story pages edition reader paperback fiction history"
        " bestseller library",
    ),
)
# fmt: on

GENERIC_WORDS: tuple[str, ...] = (
    "quality",
    "perfect",
    "new",
    "design",
    "everyday",
    "premium",
    "classic",
    "great",
    "value",
    "favourite",
)

FEMALE_NAMES: tuple[str, ...] = (
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Emily",
    "Grace",
    "Sophia",
    "Freya",
    "Lily",
    "Chloe",
    "Ella",
    "Hannah",
    "Emma",
    "Sarah",
    "Laura",
    "Anna",
    "Julia",
    "Marie",
    "Lucia",
)
MALE_NAMES: tuple[str, ...] = (
    "Oliver",
    "George",
    "Harry",
    "Noah",
    "Jack",
    "Leo",
    "Arthur",
    "Oscar",
    "Charlie",
    "James",
    "Thomas",
    "William",
    "Daniel",
    "Lucas",
    "Max",
    "Paul",
    "David",
    "Michael",
    "Liam",
    "Ethan",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Wright",
    "Walker",
    "Evans",
    "Thomas",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Clarke",
    "Murphy",
    "Kelly",
    "Miller",
    "Garcia",
    "Martin",
    "Muller",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Jansen",
    "Lopez",
    "Nguyen",
)


@dataclass(frozen=True)
class Place:
    country: str
    city: str
    timezone: str
    weight: float


PLACES: tuple[Place, ...] = (
    Place("GB", "London", "Europe/London", 0.22),
    Place("GB", "Manchester", "Europe/London", 0.08),
    Place("GB", "Birmingham", "Europe/London", 0.07),
    Place("GB", "Leeds", "Europe/London", 0.05),
    Place("GB", "Glasgow", "Europe/London", 0.05),
    Place("GB", "Bristol", "Europe/London", 0.04),
    Place("GB", "Edinburgh", "Europe/London", 0.04),
    Place("IE", "Dublin", "Europe/Dublin", 0.05),
    Place("DE", "Berlin", "Europe/Berlin", 0.04),
    Place("DE", "Munich", "Europe/Berlin", 0.03),
    Place("FR", "Paris", "Europe/Paris", 0.04),
    Place("ES", "Madrid", "Europe/Madrid", 0.03),
    Place("NL", "Amsterdam", "Europe/Amsterdam", 0.03),
    Place("US", "New York", "America/New_York", 0.06),
    Place("US", "Chicago", "America/Chicago", 0.03),
    Place("US", "Los Angeles", "America/Los_Angeles", 0.04),
    Place("CA", "Toronto", "America/Toronto", 0.03),
    Place("AU", "Sydney", "Australia/Sydney", 0.03),
    Place("IN", "Mumbai", "Asia/Kolkata", 0.02),
)

HUMAN_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0 Safari/537.36 Edg/126.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17726; Pro)",
)
PRIVACY_PROXY_USER_AGENT = "Mozilla/5.0"
"""What Apple Mail Privacy Protection's image prefetch sends: a bare, device-free agent."""

GENDERS: tuple[str, ...] = ("female", "male")
LOYALTY_TIERS: tuple[str, ...] = ("bronze", "silver", "gold")
