"""The seed's 784-64-10 MLP: its shape, its arithmetic, and its errors."""

from __future__ import annotations

import pytest
import torch

from optim_lessons.models import Net


def test_net_is_the_seeds_784_64_10_perceptron() -> None:
    net = Net()
    assert (net.fc1.in_features, net.fc1.out_features) == (784, 64)
    assert (net.fc2.in_features, net.fc2.out_features) == (64, 10)
    assert [name for name, _ in net.named_parameters()] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    ]
    assert sum(p.numel() for p in net.parameters()) == 784 * 64 + 64 + 64 * 10 + 10 == 50_890


def test_net_computes_relu_of_the_first_layer_then_the_second_layer() -> None:
    torch.manual_seed(0)
    net = Net()
    images = torch.randn(5, 1, 28, 28)
    rows = images.reshape(5, 784)
    hidden = torch.clamp(rows @ net.fc1.weight.T + net.fc1.bias, min=0)
    expected = hidden @ net.fc2.weight.T + net.fc2.bias
    torch.testing.assert_close(net(images), expected)


@pytest.mark.parametrize(
    ("shape", "batch"),
    [
        ((8, 1, 28, 28), 8),
        ((8, 28, 28), 8),
        ((8, 784), 8),
        ((784,), 1),
        ((1, 28, 28), 1),
        ((0, 784), 0),
    ],
)
def test_net_accepts_every_usual_image_layout(shape: tuple[int, ...], batch: int) -> None:
    assert Net()(torch.zeros(shape)).shape == (batch, 10)


@pytest.mark.parametrize(
    ("shape", "detail"),
    [
        ((2, 392), "2 samples of 392 values each"),  # view(-1, 784) would glue them into one image
        ((4, 3, 28, 28), "4 samples of 2352 values each"),  # colour images
        ((4, 32, 32), "4 samples of 1024 values each"),
        ((100,), "a 1-D tensor of 100 values"),
    ],
)
def test_net_rejects_inputs_that_are_not_784_features_per_sample(
    shape: tuple[int, ...], detail: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Net()(torch.zeros(shape))
    message = str(caught.value)
    assert "784 input features per sample" in message
    assert f"shape {shape}" in message and detail in message


def test_net_rejects_integer_pixels_with_a_hint() -> None:
    with pytest.raises(
        ValueError, match=r"floating-point pixels, got dtype torch.uint8.*\.float\(\)"
    ):
        Net()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_net_rejects_non_contiguous_input_that_view_cannot_flatten() -> None:
    transposed = torch.zeros(2, 28, 28).transpose(1, 2)
    with pytest.raises(ValueError, match=r"contiguous.*x.contiguous\(\)"):
        Net()(transposed)
