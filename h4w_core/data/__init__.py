"""Files the tools need at run time, installed with the package (pip and colcon alike)."""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SAMPLE_PHOTO = DATA_DIR / "astronaut.jpg"  # licence-free 512x512 half-body photo (NASA, public domain)
SAMPLE_PERSON_BOX = (20.0, 10.0, 360.0, 502.0)  # x, y, w, h of its person, pixels
