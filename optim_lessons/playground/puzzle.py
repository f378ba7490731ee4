r"""The jigsaw puzzle of chapter 1: an optimizer guiding pieces back to their places.

A picture (the lid of the box) is cut into a ``grid x grid`` set of square pieces. The
*parameters* are the pieces' positions on the table, two numbers per piece, in units of one
piece: the piece cut from row ``r`` and column ``c`` belongs at ``(x, y) = (c, r)``.

The table is drawn from those positions with a differentiable renderer: each piece is
shifted by bilinear interpolation (the same arithmetic as ``torch.nn.functional.grid_sample``
with ``align_corners=False``), and the pieces' colours add up where they lie. The loss says how
far the table is from the lid:

.. math::

    L(p) = \frac{1}{N} \sum_{\text{pixels}} \big(T_p - \text{lid}\big)^2
         + \sum_k \frac{1}{N} \sum_{\text{pixels}} \big(G_{\sigma_k} * (T_p - \text{lid})\big)^2

where :math:`T_p` is the table for positions :math:`p`, :math:`N` the number of values in the
picture, and :math:`G_{\sigma}` a Gaussian blur. The sharp term rewards exact placement; the
blurred terms let a piece feel the empty slot it belongs to from further away. The gradient
:math:`\partial L / \partial p` is the hint (which pieces to move, and which way), and the
optimizer turns hints into moves.

>>> import torch
>>> from optim_lessons.playground.puzzle import Puzzle
>>> puzzle = Puzzle(grid=4, seed=0, scramble=0.6)
>>> record = puzzle.solve(torch.optim.Adam, steps=100, lr=0.03)
>>> puzzle.pieces_in_place(puzzle.start), puzzle.pieces_in_place()
(0, 16)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DEFAULT_GUIDES",
    "Puzzle",
    "SolveRecord",
    "gaussian_blur",
    "gaussian_blurs",
    "make_picture",
]

#: The colour of the empty table (a dark walnut), used only for display.
TABLE_COLOR = (0.23, 0.16, 0.11)

#: The guides the explorer offers: ``{label: (optimizer class, fixed hyperparameters)}``.
DEFAULT_GUIDES: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "SGD": (torch.optim.SGD, {}),
    "SGD + momentum 0.9": (torch.optim.SGD, {"momentum": 0.9}),
    "Adam": (torch.optim.Adam, {}),
    "RMSprop": (torch.optim.RMSprop, {}),
    "Adagrad": (torch.optim.Adagrad, {}),
}


# -- the picture on the lid ---------------------------------------------------------------------


def make_picture(size: int = 96, device: str | torch.device | None = None) -> Tensor:
    """A small landscape drawn from formulas: sky, sun, cloud, hills, a tree and a house.

    Every region has a gentle colour gradient, so no two pieces of a grid are identical
    (a plain blue sky would make sky pieces interchangeable). Returns ``[3, size, size]``
    with values in ``[0, 1]``.
    """
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    edge = 0.6 / size  # the width of a soft edge, about half a pixel

    def rgb(r: float, g: float, b: float) -> Tensor:
        return torch.tensor([r, g, b]).view(3, 1, 1)

    def blend(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        t = t.clamp(0, 1)
        return a * (1 - t) + b * t

    def inside(distance: Tensor) -> Tensor:
        # 1 where the signed distance is negative, 0 where positive, a soft step between.
        return torch.sigmoid(-distance / edge)

    def box(x0: float, x1: float, y0: float, y1: float) -> Tensor:
        outside_x = torch.maximum(x0 - xs, xs - x1)
        outside_y = torch.maximum(y0 - ys, ys - y1)
        return inside(torch.maximum(outside_x, outside_y))

    def disc(cx: float, cy: float, radius: float, squash: float = 1.0) -> Tensor:
        return inside(((xs - cx) ** 2 + ((ys - cy) * squash) ** 2).sqrt() - radius)

    def paint(image: Tensor, mask: Tensor, colour: Tensor, opacity: float = 1.0) -> Tensor:
        return blend(image, colour.expand_as(image), opacity * mask)

    picture = blend(rgb(0.13, 0.30, 0.70), rgb(0.80, 0.90, 0.98), ys / 0.6)  # sky, lighter low
    sun_distance = ((xs - 0.25) ** 2 + (ys - 0.2) ** 2).sqrt()
    picture = paint(picture, torch.exp(-sun_distance / 0.25), rgb(1.0, 0.85, 0.5), 0.6)  # glow
    picture = paint(picture, inside(sun_distance - 0.1), rgb(1.0, 0.82, 0.2))
    cloud = torch.stack([disc(0.70, 0.22, 0.07), disc(0.78, 0.19, 0.08),
                         disc(0.86, 0.23, 0.06), disc(0.77, 0.25, 0.06)]).amax(0)
    picture = paint(picture, cloud, rgb(1.0, 1.0, 1.0), 0.9)
    far_hill = inside(0.55 + 0.06 * torch.sin(2 * math.pi * (1.2 * xs + 0.1)) - ys)
    picture = paint(picture, far_hill, blend(rgb(0.35, 0.60, 0.35), rgb(0.25, 0.45, 0.30), xs))
    near_hill = inside(0.68 + 0.07 * torch.sin(2 * math.pi * (0.8 * xs + 0.55)) - ys)
    grass = blend(rgb(0.45, 0.75, 0.25), rgb(0.20, 0.50, 0.15), 0.6 * ys + 0.4 * xs)
    grass = grass * (1 + 0.08 * torch.sin(40 * xs + 10 * ys))  # mown stripes
    picture = paint(picture, near_hill, grass)
    picture = paint(picture, box(0.50, 0.78, 0.58, 0.82),
                    blend(rgb(0.90, 0.80, 0.60), rgb(0.75, 0.62, 0.45), xs))  # walls
    apex, eaves = 0.42, 0.58
    slope = (xs - 0.64).abs() / 0.17 * (eaves - apex) - (ys - apex)  # negative under the roof line
    roof = inside(torch.maximum(ys - eaves, slope))
    picture = paint(picture, roof, rgb(0.70, 0.18, 0.15))
    picture = paint(picture, box(0.59, 0.65, 0.70, 0.82), rgb(0.40, 0.22, 0.10))  # door
    picture = paint(picture, box(0.68, 0.75, 0.63, 0.70), rgb(0.55, 0.80, 0.95))  # window
    picture = paint(picture, box(0.17, 0.21, 0.62, 0.86), rgb(0.35, 0.22, 0.10))  # trunk
    picture = paint(picture, disc(0.19, 0.55, 0.11, squash=1.2),
                    blend(rgb(0.15, 0.55, 0.20), rgb(0.05, 0.30, 0.10), (ys - 0.44) / 0.22))
    below_door = (ys > 0.82).float()
    path_centre = 0.62 + 0.5 * (ys - 0.82).clamp(min=0)
    path = inside((xs - path_centre).abs() - 0.02 - 0.2 * (ys - 0.82).clamp(min=0)) * below_door
    picture = paint(picture, path, rgb(0.85, 0.75, 0.55))
    return picture.clamp(0, 1).to(device)


def gaussian_blurs(image: Tensor, sigmas: tuple[float, ...]) -> list[Tensor]:
    """Blur ``[..., H, W]`` with Gaussians of standard deviations ``sigmas`` (in pixels).

    A blur is a product in the Fourier domain, :math:`\\hat G(f) = e^{-2\\pi^2\\sigma^2|f|^2}`,
    so one Fourier transform of the image serves every ``sigma``, and a wide blur costs no more
    than a narrow one. The image is first padded with zeros by three of the largest ``sigma``
    on every side, so that no blur wraps around the edges; the padding is cut off again.
    """
    pad = int(math.ceil(3 * max(sigmas, default=0.0)))
    padded = F.pad(image, (pad, pad, pad, pad))
    height, width = padded.shape[-2:]
    spectrum = torch.fft.rfft2(padded)
    fy = torch.fft.fftfreq(height, device=image.device, dtype=image.dtype)
    fx = torch.fft.rfftfreq(width, device=image.device, dtype=image.dtype)
    squared_frequency = fy[:, None] ** 2 + fx[None, :] ** 2
    blurred = []
    for sigma in sigmas:
        response = torch.exp(-2 * math.pi**2 * sigma**2 * squared_frequency)
        full = torch.fft.irfft2(spectrum * response, s=(height, width))
        blurred.append(full[..., pad:height - pad, pad:width - pad])
    return blurred


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Blur ``[..., H, W]`` with one Gaussian of standard deviation ``sigma`` pixels
    (see :func:`gaussian_blurs`)."""
    return gaussian_blurs(image, (sigma,))[0]


@contextmanager
def _one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# -- the puzzle -----------------------------------------------------------------------------------


@dataclass
class SolveRecord:
    """What happened during one guided solve.

    Attributes:
        name: a label for plots (e.g. ``"Adam"``).
        positions: ``[steps + 1, pieces, 2]``, the positions before each step and after the last.
        losses: ``[steps + 1]``, the loss at each of those positions.
        gradients: ``[steps, pieces, 2]``, the hint each step received.
        hyperparameters: the keyword arguments the optimizer was built with.
        puzzle: the puzzle that was solved (for drawing).
    """

    name: str
    positions: Tensor
    losses: Tensor
    gradients: Tensor
    hyperparameters: dict[str, Any]
    puzzle: Puzzle = field(repr=False)

    @property
    def steps(self) -> int:
        return self.gradients.shape[0]

    @property
    def moves(self) -> Tensor:
        """``[steps, pieces]``: how far each piece moved at each step (in pieces)."""
        return (self.positions[1:] - self.positions[:-1]).norm(dim=-1)

    def effective_step_sizes(self, steps: int | None = None) -> Tensor:
        """``[pieces]``: distance moved per unit of hint, over the first ``steps`` steps.

        Computed as :math:`\\sum_t \\lVert\\Delta p_{t,i}\\rVert / \\sum_t \\lVert g_{t,i}\\rVert`.
        Plain SGD gives every piece exactly ``lr``; an adaptive optimizer gives pieces with
        weak hints larger steps and pieces with strong hints smaller ones.
        """
        steps = self.steps if steps is None else min(steps, self.steps)
        moved = self.moves[:steps].sum(0)
        hinted = self.gradients[:steps].norm(dim=-1).sum(0)
        return moved / hinted.clamp(min=torch.finfo(hinted.dtype).tiny)

    def pieces_in_place(self, tolerance: float = 0.1) -> Tensor:
        """``[steps + 1]``: how many pieces lay within ``tolerance`` of their slot at each step."""
        distance = (self.positions - self.puzzle.home.cpu()).norm(dim=-1)
        return (distance < tolerance).sum(-1)

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])


class Puzzle:
    """A picture cut into ``grid x grid`` pieces whose positions are the parameters.

    Args:
        picture: ``[channels, H, W]`` (or ``[H, W]``) with ``H`` and ``W`` divisible by
            ``grid``, values in ``[0, 1]`` (or 0 to 255 for integer images); by default
            :func:`make_picture`. Its floating dtype is kept (float64 for precise checks).
        grid: pieces per side.
        seed: seeds the scramble.
        scramble: how far each piece is moved from its slot, in pieces: a float ``r`` moves
            each piece to a uniformly random point of the disc of radius ``r`` around its slot;
            a ``[pieces, 2]`` tensor gives the starting positions directly (see :meth:`swapped`).
        blur: the standard deviations of the blurred loss terms, in pieces.
        margin: the empty border of the table around the picture, in pieces.
        device: where to compute; by default the picture's device.

    Attributes:
        positions: ``nn.Parameter`` of shape ``[pieces, 2]``, each row ``(x, y)`` in pieces.
        home: ``[pieces, 2]``, where each piece belongs.
        start: ``[pieces, 2]``, the scrambled positions every :meth:`solve` starts from.
        pieces: ``[pieces, channels, h, w]``, the cut-out pieces, row by row.
    """

    def __init__(
        self,
        picture: Tensor | None = None,
        grid: int = 4,
        seed: int = 0,
        scramble: float | Tensor = 0.6,
        blur: tuple[float, ...] = (0.125, 0.35),
        margin: int = 1,
        device: str | torch.device | None = None,
    ) -> None:
        if picture is None:
            picture = make_picture(device=device)
        if picture.dim() == 2:
            picture = picture.unsqueeze(0)
        device = torch.device(device) if device is not None else picture.device
        if not picture.is_floating_point():  # 8-bit images: 0..255 becomes 0..1
            picture = picture.to(torch.get_default_dtype()) / 255
        picture = picture.to(device)
        channels, height, width = picture.shape
        if grid < 1 or height % grid or width % grid:
            raise ValueError(f"a {height}x{width} picture cannot be cut into a {grid}x{grid} grid")
        self.grid, self.margin, self.device = grid, margin, device
        self.piece_height, self.piece_width = height // grid, width // grid
        self.picture = picture
        self.pieces = (picture.reshape(channels, grid, self.piece_height, grid, self.piece_width)
                       .permute(1, 3, 0, 2, 4).reshape(grid * grid, channels, self.piece_height,
                                                        self.piece_width))
        rows, columns = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        self.home = torch.stack([columns.flatten(), rows.flatten()], dim=1).to(picture)
        self.table_height = height + 2 * margin * self.piece_height
        self.table_width = width + 2 * margin * self.piece_width
        border_x, border_y = margin * self.piece_width, margin * self.piece_height
        self.lid = F.pad(picture, (border_x, border_x, border_y, border_y))
        self.blur = tuple(blur)
        self.seed = seed
        if isinstance(scramble, Tensor):
            start = scramble.to(self.home)
            if start.shape != self.home.shape:
                raise ValueError(f"starting positions must have shape {tuple(self.home.shape)}")
        else:
            start = self.home + self._random_offsets(float(scramble), seed)
        self.start = start
        self.positions = nn.Parameter(start.clone())

    @property
    def num_pieces(self) -> int:
        return self.grid * self.grid

    def _random_offsets(self, radius: float, seed: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        angle = 2 * math.pi * torch.rand(self.num_pieces, generator=generator)
        # sqrt makes the points uniform over the disc's area, not crowded at its centre
        distance = radius * torch.rand(self.num_pieces, generator=generator).sqrt()
        offsets = distance[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        return offsets.to(self.home)

    def swapped(self, first: int, second: int) -> Tensor:
        """Starting positions with every piece in its slot except two that trade places."""
        positions = self.home.clone()
        positions[[first, second]] = positions[[second, first]]
        return positions

    def reset(self, start: Tensor | None = None) -> None:
        """Put the pieces back at the scrambled start (or at ``start``) and forget any hints
        (``positions.grad`` becomes ``None``)."""
        with torch.no_grad():
            self.positions.copy_(self.start if start is None else start.to(self.home))
        self.positions.grad = None

    # -- drawing the table ----------------------------------------------------------------------

    def render(self, positions: Tensor | None = None) -> Tensor:
        """The table, ``[channels, table_height, table_width]``, differentiable in ``positions``.

        Each piece lands on a window one pixel larger than itself at the integer part of its
        corner; the fractional part ``f`` mixes the piece with copies of itself shifted by one
        pixel: ``(1 - f) * piece + f * shifted`` along x, then along y. That is bilinear
        interpolation with zeros outside the piece. Pieces then add up on the table.
        """
        positions = self.positions if positions is None else positions
        return self._render(self.pieces, positions)

    def _render(self, pieces: Tensor, positions: Tensor) -> Tensor:
        h, w = self.piece_height, self.piece_width
        corner_x = (positions[:, 0] + self.margin) * w  # the piece's top-left corner, in pixels
        corner_y = (positions[:, 1] + self.margin) * h
        whole_x, whole_y = corner_x.detach().floor(), corner_y.detach().floor()
        fraction_x = (corner_x - whole_x).view(-1, 1, 1, 1)
        fraction_y = (corner_y - whole_y).view(-1, 1, 1, 1)
        # shift by a fraction of a pixel along x: the window is one column wider than the piece
        window = ((1 - fraction_x) * F.pad(pieces, (0, 1)) + fraction_x * F.pad(pieces, (1, 0)))
        # ... and along y
        window = ((1 - fraction_y) * F.pad(window, (0, 0, 0, 1))
                  + fraction_y * F.pad(window, (0, 0, 1, 0)))
        return self._place(window, whole_x.long(), whole_y.long())

    def _place(
        self, windows: Tensor, left: Tensor, top: Tensor, piece_by_piece: bool | None = None
    ) -> Tensor:
        """Add each ``[channels, h + 1, w + 1]`` window to the table at ``(top, left)``;
        pixels that fall off the table are dropped. ``piece_by_piece`` (default: on every
        device but the CPU) adds one piece at a time; both ways give the same bits."""
        count, channels, height, width = windows.shape
        rows = top[:, None] + torch.arange(height, device=windows.device)  # [pieces, h + 1]
        columns = left[:, None] + torch.arange(width, device=windows.device)
        on_table = (((rows >= 0) & (rows < self.table_height))[:, :, None]
                    & ((columns >= 0) & (columns < self.table_width))[:, None, :])
        pixel = rows[:, :, None] * self.table_width + columns[:, None, :]  # [pieces, h+1, w+1]
        table_size = self.table_height * self.table_width
        dropped = channels * table_size  # one spare slot collects everything off the table
        channel = torch.arange(channels, device=windows.device).view(1, channels, 1, 1)
        index = torch.where(on_table[:, None], channel * table_size + pixel[:, None], dropped)
        flat = windows.new_zeros(dropped + 1)
        if piece_by_piece is None:
            piece_by_piece = windows.device.type != "cpu"
        if not piece_by_piece:  # one call: the CPU adds in index order, piece after piece
            flat = flat.index_add(0, index.flatten(), windows.flatten())
        else:
            # CUDA adds values aimed at one pixel with atomics, in any order, so overlapping
            # pieces could round differently from run to run. Within one piece every pixel is
            # distinct (only the spare slot repeats), so adding piece after piece fixes the
            # order: the CPU's, on every device.
            for piece_index, window in zip(index, windows, strict=True):
                flat = flat.index_add(0, piece_index.flatten(), window.flatten())
        return flat[:dropped].view(channels, self.table_height, self.table_width)

    # -- the loss and its gradient -------------------------------------------------------------

    def loss(self, positions: Tensor | None = None) -> Tensor:
        """How far the table is from the lid (see the module docstring): the mean squared
        difference, plus the same for blurred copies of the difference."""
        return sum(self.loss_terms(positions).values())

    def loss_terms(self, positions: Tensor | None = None) -> dict[str, Tensor]:
        """The loss's terms by name: ``"sharp"``, then ``"blur 0.125"`` and so on (the blur's
        standard deviation in pieces). Their sum is :meth:`loss`."""
        residual = self.render(positions) - self.lid
        count = self.picture.numel()  # a mean over the picture's area, not the whole table
        terms = {"sharp": residual.pow(2).sum() / count}
        sigmas = tuple(sigma * self.piece_width for sigma in self.blur)
        for sigma, blurred in zip(self.blur, gaussian_blurs(residual, sigmas), strict=True):
            terms[f"blur {sigma:g}"] = blurred.pow(2).sum() / count
        return terms

    def hints(self, positions: Tensor | None = None) -> Tensor:
        """The gradient of the loss with respect to the positions, ``[pieces, 2]``.

        Moving a piece against its hint lowers the loss fastest. This does not touch
        ``positions.grad``.
        """
        positions = self.positions if positions is None else positions
        positions = positions.detach().requires_grad_(True)
        with torch.enable_grad(), _one_thread_on_cpu(self.device):
            (gradient,) = torch.autograd.grad(self.loss(positions), positions)
        return gradient

    def pieces_in_place(self, positions: Tensor | None = None, tolerance: float = 0.1) -> int:
        """How many pieces lie within ``tolerance`` (in pieces) of their own slot."""
        positions = self.positions if positions is None else positions
        return int(((positions.detach() - self.home).norm(dim=1) < tolerance).sum())

    # -- the guided solve ----------------------------------------------------------------------

    def solve(
        self,
        optimizer_cls: Callable[..., torch.optim.Optimizer],
        steps: int = 120,
        *,
        name: str | None = None,
        start: Tensor | None = None,
        **hyperparameters: Any,
    ) -> SolveRecord:
        """Let an optimizer guide the pieces for ``steps`` steps, from the scrambled start.

        ``optimizer_cls`` is any class with torch.optim's constructor contract (a
        ``torch.optim`` class or one of ``optim_lessons.optimizers``); ``hyperparameters`` go
        to its constructor. Each step is the loop every chapter uses::

            optimizer.zero_grad()   # forget the previous hints
            loss = self.loss()      # how far is the table from the lid?
            loss.backward()         # this step's hints: positions.grad
            optimizer.step()        # move the pieces

        Leaves :attr:`positions` where the last step put them and returns a :class:`SolveRecord`.

        On the CPU the solve uses one thread: the tensors are small, and sharing such small
        work between threads costs more time than it saves (ten times more on a busy machine).
        """
        self.reset(start)
        optimizer = optimizer_cls([self.positions], **hyperparameters)
        positions, losses, gradients = [], [], []
        with _one_thread_on_cpu(self.device):
            for _ in range(steps):
                optimizer.zero_grad()
                loss = self.loss()
                loss.backward()
                positions.append(self.positions.detach().cpu().clone())
                losses.append(loss.detach().cpu())
                gradients.append(self.positions.grad.detach().cpu().clone())
                optimizer.step()
            with torch.no_grad():
                losses.append(self.loss().cpu())
        positions.append(self.positions.detach().cpu().clone())
        label = name or getattr(optimizer_cls, "__name__", str(optimizer_cls))
        return SolveRecord(
            name=label,
            positions=torch.stack(positions),
            losses=torch.stack(losses),
            gradients=torch.stack(gradients) if gradients else torch.zeros(0, self.num_pieces, 2),
            hyperparameters=dict(hyperparameters),
            puzzle=self,
        )

    # -- pictures ------------------------------------------------------------------------------

    def table_image(self, positions: Tensor | None = None) -> np.ndarray:
        """The table as an ``[H, W, 3]`` array for ``imshow``: the wooden table shows where no
        piece lies, and colours are clipped to ``[0, 1]`` where pieces overlap."""
        with torch.no_grad(), _one_thread_on_cpu(self.device):
            positions = self.positions if positions is None else positions.to(self.home)
            table = self.render(positions)
            cover = self._render(torch.ones_like(self.pieces[:, :1]), positions)
        return self._to_image(table, cover)

    def lid_image(self) -> np.ndarray:
        """The lid (the picture on the table) as an ``[H, W, 3]`` array for ``imshow``."""
        with torch.no_grad():
            cover = self._render(torch.ones_like(self.pieces[:, :1]), self.home)
            return self._to_image(self.lid, cover)

    def _to_image(self, table: Tensor, cover: Tensor) -> np.ndarray:
        if table.shape[0] == 1:
            table = table.expand(3, -1, -1)
        wood = torch.tensor(TABLE_COLOR, device=table.device).view(3, 1, 1)
        image = table + (1 - cover.clamp(0, 1)) * wood
        return image.clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``imshow`` extent that puts table coordinates in pieces: slot ``(c, r)`` spans
        ``[c, c + 1] x [r, r + 1]``."""
        low = -float(self.margin)
        return (low, self.grid - low, self.grid - low, low)

    def __repr__(self) -> str:
        size = f"{self.piece_height}x{self.piece_width}"
        return (f"Puzzle({self.grid}x{self.grid} pieces of {size} px, {self.pieces_in_place()} in "
                f"place, loss {float(self.loss().detach()):.4f})")
