"""Everything around the model that makes it learn: config, device, schedule, checkpoints, the training loop."""
