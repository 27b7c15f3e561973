"""Run a probe set through a model and cut each example's attention out of its padded batch."""
