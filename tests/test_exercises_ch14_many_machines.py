"""The self-checks of chapter 14's exercises: a stub is "Not done", a wrong answer "Not yet",
the right one "Correct"; each returns whether the answer is right."""

from __future__ import annotations

from optim_lessons.exercises.ch14_many_machines import check_adafactor_bytes, check_zero_split
from optim_lessons.playground.distributed_figures import plot_bytes_per_step, plot_state_per_rank

MEASURED_SPLIT = [200_705, 18_073]  # Adam, sizes 784-128-64-10, 2 ranks (chapter 14)
SMALL_MLP = [(16, 12), (16,), (16, 16), (16,), (4, 16), (4,)]


def test_zero_split(capsys):
    assert not check_zero_split(None, MEASURED_SPLIT)
    assert capsys.readouterr().out.startswith("Not done")
    assert not check_zero_split([109_389, 109_389], MEASURED_SPLIT)
    assert capsys.readouterr().out.startswith("Not yet: the ranks hold 200,705, 18,073.")
    assert check_zero_split(MEASURED_SPLIT, MEASURED_SPLIT)
    assert capsys.readouterr().out == "Correct: 200,705, 18,073 state numbers per rank.\n"


def ring(shape, world_size, itemsize):
    numbers = shape[-1] + 3 if len(shape) >= 2 else 2
    return 2 * numbers * itemsize * (world_size - 1) / world_size


def test_adafactor_bytes(capsys):
    assert not check_adafactor_bytes(lambda *_: None, SMALL_MLP, 472.0, 2, 8)
    assert capsys.readouterr().out.startswith("Not done")
    assert not check_adafactor_bytes(lambda s, n, b: 8.0, SMALL_MLP, 472.0, 2, 8)
    assert capsys.readouterr().out.startswith("Not yet: your formula gives 48 bytes")
    assert check_adafactor_bytes(ring, SMALL_MLP, 472.0, 2, 8)
    assert capsys.readouterr().out == "Correct: 472 bytes per step and rank, as measured.\n"


def test_figures_draw_what_they_are_given():
    ax = plot_state_per_rank({"ZeRO-1": [10, 2], "FSDP2": [6, 6]})
    assert ax.get_title() == "Optimizer state per rank (2 ranks)"
    assert [round(p.get_height()) for p in ax.patches] == [10, 6, 2, 6]
    ax = plot_bytes_per_step({"Adam": 0.0, "Muon": 2048.0})
    assert [round(p.get_width()) for p in ax.patches] == [0, 2048]
