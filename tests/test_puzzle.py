"""The puzzle of chapter 1: its loss, its gradient (the hints), the guided solves, the figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optim_lessons.playground.puzzle import Puzzle, gaussian_blur, make_picture
from optim_lessons.playground.puzzle_figures import (
    PuzzleExplorer,
    animate_solve,
    draw_hints,
    frame_steps,
    plot_attention,
    plot_solve_losses,
    show_tables,
)

#: The chapter's three guides and the settings it gives them.
GUIDES = {
    "SGD": (torch.optim.SGD, {"lr": 0.5}),
    "SGD + momentum": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "Adam": (torch.optim.Adam, {"lr": 0.03}),
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def puzzle() -> Puzzle:
    return Puzzle()


def test_picture_is_an_rgb_image_with_every_piece_different():
    picture = make_picture(96)
    assert picture.shape == (3, 96, 96)
    assert picture.min() >= 0 and picture.max() <= 1
    pieces = Puzzle(picture, grid=4).pieces.flatten(1)
    gaps = torch.cdist(pieces, pieces) + torch.eye(16) * 1e9
    assert gaps.min() > 1.0  # no two pieces could be swapped without the loss noticing


def test_the_unscrambled_puzzle_has_zero_loss():
    solved = Puzzle(scramble=0.0)
    assert solved.pieces_in_place() == 16
    assert solved.loss().item() < 1e-10
    assert torch.allclose(solved.render(), solved.lid, atol=1e-6)


def test_render_is_bilinear_sampling_like_grid_sample():
    puzzle = Puzzle(picture=make_picture(48).double(), grid=3, scramble=0.9, seed=3)
    positions = puzzle.start
    size = puzzle.piece_width
    centres = torch.arange(puzzle.table_width, dtype=torch.float64) + 0.5
    corner = (positions + puzzle.margin) * size
    x = 2 * (centres[None] - corner[:, :1]) / size - 1  # table pixel -> piece coordinates
    y = 2 * (centres[None] - corner[:, 1:]) / size - 1
    grid = torch.stack(torch.broadcast_tensors(x[:, None, :], y[:, :, None]), dim=-1)
    expected = F.grid_sample(puzzle.pieces, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False).sum(0)
    torch.testing.assert_close(puzzle.render(positions), expected)


def test_adding_piece_by_piece_gives_the_bits_of_one_index_add():
    # The CUDA path adds one piece at a time so that overlaps are summed in a fixed order; it
    # must give the very sums (and gradients) of the CPU's single call, overlaps included.
    puzzle = Puzzle(grid=4, seed=0)
    generator = torch.Generator().manual_seed(0)
    count, channels = 16, puzzle.pieces.shape[1]
    shape = (count, channels, puzzle.piece_height + 1, puzzle.piece_width + 1)
    windows = torch.rand(shape, generator=generator).requires_grad_(True)
    # corners crowded into a small area (many overlaps), some partly off the table
    left = torch.randint(-10, puzzle.table_width // 3, (count,), generator=generator)
    top = torch.randint(-10, puzzle.table_height // 3, (count,), generator=generator)
    weights = torch.rand(channels, puzzle.table_height, puzzle.table_width, generator=generator)
    results = []
    for piece_by_piece in (False, True):
        table = puzzle._place(windows, left, top, piece_by_piece=piece_by_piece)
        (gradient,) = torch.autograd.grad((table * weights).sum(), windows)
        results.append((table, gradient))
    (one_call, one_gradient), (in_order, in_order_gradient) = results
    assert one_call.sum() > 0 and (one_call > 1.5).any()  # pieces really overlap
    assert torch.equal(one_call, in_order) and torch.equal(one_gradient, in_order_gradient)


def test_gradient_of_the_loss_matches_finite_differences():
    puzzle = Puzzle(picture=make_picture(32).double(), grid=4, scramble=0.7, seed=1)
    positions = puzzle.start.clone()
    # keep every corner away from a whole pixel, where bilinear interpolation has a kink
    fraction = (positions * puzzle.piece_width) % 1
    positions += ((0.5 - fraction) * 0.5) / puzzle.piece_width
    positions.requires_grad_(True)
    assert torch.autograd.gradcheck(puzzle.loss, (positions,), eps=1e-6, atol=1e-8, rtol=1e-5)


def test_hint_for_a_single_displaced_piece_points_back_to_its_slot():
    plain = Puzzle(scramble=0.0)
    start = plain.home.clone()
    start[5] += torch.tensor([0.3, -0.2])
    puzzle = Puzzle(scramble=start)
    hints = puzzle.hints()
    towards_home = puzzle.home[5] - start[5]
    assert torch.dot(-hints[5], towards_home) > 0.8 * hints[5].norm() * towards_home.norm()
    others = torch.cat([hints[:5], hints[6:]]).norm(dim=1)
    assert others.max() < hints[5].norm()  # the misplaced piece gets the strongest hint


def test_hints_are_the_gradient_that_backward_computes(puzzle):
    puzzle.reset()
    puzzle.positions.grad = None
    puzzle.loss().backward()
    torch.testing.assert_close(puzzle.hints(), puzzle.positions.grad)


@pytest.mark.parametrize("name", list(GUIDES))
def test_every_guide_lowers_the_loss_and_puts_pieces_back(puzzle, name):
    optimizer_cls, hyperparameters = GUIDES[name]
    record = puzzle.solve(optimizer_cls, 60, name=name, **hyperparameters)
    placed = record.pieces_in_place()
    assert placed[0] == 0
    assert record.final_loss < 0.1 * record.losses[0]
    assert placed[-1] >= 12
    torch.testing.assert_close(record.positions[-1], puzzle.positions.detach())


def test_adam_solves_the_default_puzzle(puzzle):
    record = puzzle.solve(torch.optim.Adam, 100, lr=0.03)
    assert puzzle.pieces_in_place(puzzle.start) == 0
    assert puzzle.pieces_in_place() == 16
    assert record.final_loss < 1e-3 * record.losses[0]


def test_reset_puts_the_pieces_back_and_forgets_the_hints(puzzle):
    puzzle.solve(torch.optim.SGD, 3, lr=0.5)
    assert puzzle.positions.grad is not None
    puzzle.reset()
    assert puzzle.positions.grad is None
    torch.testing.assert_close(puzzle.positions.detach(), puzzle.start)


def test_every_solve_starts_from_the_same_scramble(puzzle):
    first = puzzle.solve(torch.optim.SGD, 3, lr=0.5)
    second = puzzle.solve(torch.optim.Adam, 3, lr=0.03)
    torch.testing.assert_close(first.positions[0], puzzle.start)
    torch.testing.assert_close(second.positions[0], puzzle.start)
    assert first.losses[0] == second.losses[0]


def test_record_holds_positions_losses_and_hints_per_step(puzzle):
    record = puzzle.solve(torch.optim.SGD, 5, lr=0.5)
    assert record.positions.shape == (6, 16, 2)
    assert record.losses.shape == (6,)
    assert record.gradients.shape == (5, 16, 2)
    assert record.moves.shape == (5, 16)
    # plain SGD moves by exactly lr * gradient
    moved = record.positions[1:] - record.positions[:-1]
    torch.testing.assert_close(moved, -0.5 * record.gradients)


def test_sgd_gives_every_piece_the_same_step_per_hint_and_adam_does_not(puzzle):
    sgd = puzzle.solve(torch.optim.SGD, 20, lr=0.5).effective_step_sizes()
    adam = puzzle.solve(torch.optim.Adam, 20, lr=0.03).effective_step_sizes()
    torch.testing.assert_close(sgd, torch.full_like(sgd, 0.5))
    assert adam.max() > 2 * adam.min()
    # Adam's first move is lr for every coordinate: pieces with faint hints move as far
    first = puzzle.solve(torch.optim.Adam, 1, lr=0.03)
    torch.testing.assert_close((first.positions[1] - first.positions[0]).abs(),
                               torch.full((16, 2), 0.03), atol=1e-4, rtol=0)


def test_two_swapped_pieces_stay_stuck_in_a_local_minimum():
    plain = Puzzle(scramble=0.0)
    stuck = Puzzle(scramble=plain.swapped(1, 2))
    assert stuck.pieces_in_place() == 14
    record = stuck.solve(torch.optim.Adam, 60, lr=0.03)
    assert stuck.pieces_in_place() == 14
    assert record.final_loss > 0.5 * record.losses[0] > 0
    # no piece ever gets further from where it started than Adam's first step, lr * sqrt(2)
    farthest = (record.positions - record.positions[0]).norm(dim=-1).max()
    assert farthest < 0.03 * 2**0.5 + 1e-3


def test_a_picture_that_does_not_divide_into_the_grid_is_refused():
    with pytest.raises(ValueError, match="cannot be cut"):
        Puzzle(make_picture(50), grid=4)


def test_frame_steps_start_at_zero_end_at_the_last_step_and_respect_the_limit():
    steps = frame_steps(100, 36)
    assert steps[0] == 0 and steps[-1] == 100
    assert len(steps) <= 36
    assert np.all(np.diff(steps) > 0)
    assert np.diff(steps)[0] <= np.diff(steps)[-1]  # denser at the start


def test_animation_is_html_with_one_frame_per_shown_step(puzzle):
    records = {
        "SGD": puzzle.solve(torch.optim.SGD, 12, lr=0.5),
        "Adam": puzzle.solve(torch.optim.Adam, 12, lr=0.03),
    }
    html = animate_solve(records, frames=8).data
    assert html.count("data:image/jpeg;base64,") == len(frame_steps(12, 8))
    assert "<script" in html
    assert len(html) < 200_000


def test_figures_carry_titles_and_axis_labels(puzzle):
    records = {"SGD": puzzle.solve(torch.optim.SGD, 10, lr=0.5),
               "Adam": puzzle.solve(torch.optim.Adam, 10, lr=0.03)}
    tables = show_tables(puzzle, {"scrambled": puzzle.start, "after Adam": records["Adam"]})
    assert [ax.get_title().split("\n")[0] for ax in tables.axes] == ["The lid", "scrambled",
                                                                     "after Adam"]
    losses = plot_solve_losses(records)
    for ax in losses.axes:
        assert ax.get_title() and ax.get_xlabel() == "step" and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SGD", "Adam"]
    attention = plot_attention(records, steps=5)
    titled = [ax for ax in attention.axes if ax.get_title()]
    assert len(titled) == 4 and all(ax.get_xlabel() for ax in titled)
    ax = draw_hints(puzzle, puzzle.start)
    assert ax.get_title() and ax.get_xlabel() == "x (pieces)"
    assert len(ax.collections[0].get_offsets()) == 16  # one arrow per piece


def test_explorer_reruns_the_solve_when_a_control_changes(puzzle):
    explorer = PuzzleExplorer(puzzle, guide="Adam", lr=0.03, steps=20)
    assert explorer.record.name == "Adam" and explorer.record.steps == 20
    first_image = explorer.image.value
    record = explorer.update(guide="SGD", lr=0.5, steps=10)
    assert record is explorer.record
    assert record.name == "SGD" and record.steps == 10
    assert record.hyperparameters == {"lr": 0.5}
    assert explorer.image.value != first_image and explorer.image.value[:4] == b"\x89PNG"
    assert "SGD (lr=0.5), 10 steps" in repr(explorer)
    with pytest.raises(ValueError, match="no control"):
        explorer.update(momentum=0.9)


def test_gaussian_blur_keeps_the_total_and_spreads_a_point_like_a_gaussian():
    image = torch.zeros(1, 41, 41, dtype=torch.float64)
    image[0, 20, 20] = 1
    blurred = gaussian_blur(image, 3.0)[0]
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-9)
    assert blurred[20, 20].item() == pytest.approx(1 / (2 * np.pi * 9), rel=1e-3)
    assert blurred[20, 23].item() == pytest.approx(blurred[20, 20].item() * np.exp(-0.5), rel=1e-3)
