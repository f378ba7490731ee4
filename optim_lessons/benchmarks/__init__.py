"""Experiments that compare optimizers: the race on Fashion-MNIST and the step-time benchmark."""
