"""Product recommendations: popularity, buy-again, co-occurrence, ALS, content and a hybrid,
behind one id-speaking interface, with business rules, a fallback chain, real-time answers and
a time-based evaluation. See docs/recommendations.md."""

from sendwise.recommend.als import ALS
from sendwise.recommend.base import Recommender
from sendwise.recommend.build import (
    RecommendationBuild,
    build_recommendations,
    export_recommendations,
    top_products,
)
from sendwise.recommend.content import Content
from sendwise.recommend.cooccur import CoOccurrence
from sendwise.recommend.data import Interactions, load_interactions
from sendwise.recommend.engine import Engine, Recommendation, fit_components, make_algorithm
from sendwise.recommend.hybrid import Hybrid
from sendwise.recommend.popularity import BuyAgain, Popularity, RecentPopularity, SegmentPopularity

__all__ = [
    "ALS",
    "BuyAgain",
    "CoOccurrence",
    "Content",
    "Engine",
    "Hybrid",
    "Interactions",
    "Popularity",
    "RecentPopularity",
    "Recommendation",
    "RecommendationBuild",
    "Recommender",
    "SegmentPopularity",
    "build_recommendations",
    "export_recommendations",
    "fit_components",
    "load_interactions",
    "make_algorithm",
    "top_products",
]
