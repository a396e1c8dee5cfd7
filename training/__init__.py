"""Everything that makes the model learn: the loop, its schedule and evaluation, run folders, the trainer command."""
