"""Training: batches, optimizer and schedule, and the loop."""
