"""Benchmarks: ``python -m tlsmpi.bench {pairs,liouvillian,entropy}``.

Each prints timings and ratios against a reference method computed in the same run.
"""
