"""Every torch.optim algorithm, written from scratch, under torch's own names.

>>> from optim_lessons.optimizers import Adam
>>> import torch
>>> Adam([torch.zeros(2, requires_grad=True)], lr=1e-3)  # doctest: +ELLIPSIS
Adam (...
"""

from importlib import import_module

#: Class name -> module name under optim_lessons.optimizers (one module per algorithm).
MODULES = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "Adagrad": "adagrad",
    "Adadelta": "adadelta",
    "Adamax": "adamax",
    "ASGD": "asgd",
    "NAdam": "nadam",
    "RAdam": "radam",
    "RMSprop": "rmsprop",
    "Rprop": "rprop",
    "LBFGS": "lbfgs",
    "SparseAdam": "sparse_adam",
    "Adafactor": "adafactor",
    "Muon": "muon",
    "Lion": "lion",
}

#: The fifteen algorithms that torch.optim itself ships (Lion is the book's own exercise).
TORCH_NAMES = tuple(name for name in MODULES if name != "Lion")

__all__ = list(MODULES)


def __getattr__(name: str):
    if name in MODULES:
        return getattr(import_module(f"{__name__}.{MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
