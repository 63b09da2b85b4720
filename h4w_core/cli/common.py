"""Shared bits of the command-line tools: one error format and one logging set-up."""
from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def fail(prog: str, code: int, message: object) -> int:
    """Print 'prog: error: message' (one line) to stderr and return the exit code."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def setup_logging(verbose: bool = False, default: int = logging.WARNING) -> None:
    logging.basicConfig(level=logging.INFO if verbose else default, format=LOG_FORMAT)
