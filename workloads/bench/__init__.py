"""`dynoline bench …`: measurements that compare against a baseline in the same run, on the same machine.

Each benchmark prints its figures and its ratios side by side (or JSON with `--json`), and says which
target it met. Speed is measured here, never asserted in tests.
"""
