"""optim-lessons: how PyTorch optimizers work, built from scratch beside torch.optim."""

__version__ = "0.1.0"
