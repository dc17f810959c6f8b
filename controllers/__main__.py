"""`python -m controllers [-v] [-n NS]`: run the operator (same as `dynoline [-v] operator [-n NS]`)."""

from __future__ import annotations

import sys

from workloads.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    verbose = [a for a in args if a in ("-v", "--verbose")]
    sys.exit(main([*verbose, "operator", *(a for a in args if a not in verbose)]))
