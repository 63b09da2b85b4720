"""From an image and person boxes to typed per-person results in the real camera frame."""
