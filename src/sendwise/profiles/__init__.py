"""Customer profiles: one wide row per customer with identity, features, RFM, rule segments
and clusters, stored in the warehouse table ``profile`` (later steps add scores and
recommendations)."""

from sendwise.profiles.build import ProfileBuild, build_profiles, end_of_data
from sendwise.profiles.read import export_profiles, get_profile

__all__ = ["ProfileBuild", "build_profiles", "end_of_data", "export_profiles", "get_profile"]
