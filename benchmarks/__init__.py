"""Benchmarks: one command each, ratios against yardsticks measured in the same run."""
