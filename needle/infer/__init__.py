"""Inference: cached greedy generation and batched prediction."""
