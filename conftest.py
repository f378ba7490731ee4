"""Loaded by pytest before it collects anything: puts the numerics policy in place before torch
is imported, here and in every Jupyter kernel and xdist worker started from this process.
See optim_lessons/numerics.py."""

from optim_lessons import numerics

numerics.apply()


def pytest_report_header(config):
    return numerics.header()
