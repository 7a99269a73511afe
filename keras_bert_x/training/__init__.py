"""Training: the distributed loop, tasks, optimizers, strategies and checkpoints."""
