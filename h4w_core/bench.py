"""``python -m h4w_core.bench``: per-stage timings of the eager pipeline (h4w_core.tools.stage_bench)."""
import sys

from h4w_core.tools.stage_bench import main

if __name__ == "__main__":
    sys.exit(main())
