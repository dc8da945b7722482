"""Training: the step, the loop, the optimiser, schedules, checkpoints."""
