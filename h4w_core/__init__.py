"""h4w_core: ROS-free Hand4Whole whole-body SMPL-X inference."""
from h4w_core.results import Intrinsics, PersonResult

__all__ = ["Intrinsics", "PersonResult"]
