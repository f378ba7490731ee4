"""Optimizers on several processes: a launcher, the rank helpers, and what sharding needs.

- :func:`launch` starts N ranks on this machine (gloo over 127.0.0.1) and runs one function on
  each; :mod:`.ranks` says who is who, under ``launch`` or ``torchrun``;
- :mod:`.sharded` gives an optimizer the whole tensor, sums over the ranks and global norms
  when its parameters are DTensors (FSDP2), and counts the bytes;
- :mod:`.runs` trains a small MLP under DDP, ZeRO-1 and FSDP2, and in one process, to compare.
"""

from optim_lessons.distributed.launch import RankError, free_port, launch, port_is_free

__all__ = ["RankError", "free_port", "launch", "port_is_free"]
