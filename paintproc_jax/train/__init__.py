"""Training: config section, optimizer, sharded train step, checkpoints, metrics and the loop."""
