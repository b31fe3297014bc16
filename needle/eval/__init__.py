"""Evaluation: metrics over predicted vs. expected calls."""
