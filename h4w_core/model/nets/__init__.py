"""Network modules whose attribute paths are the Hand4Whole checkpoint keys."""
