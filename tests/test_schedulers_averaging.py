"""optim_lessons.averaging (torch.optim.swa_utils from scratch) matches torch bit for bit."""

import copy

import pytest
import torch
from _optim_checks import assert_same_error
from torch.optim import swa_utils

import optim_lessons.averaging as ours


def make_model(dtype=torch.float64):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2)
    ).to(dtype)


def batches(count=4, dtype=torch.float64):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(8, 4, generator=generator, dtype=dtype) for _ in range(count)]


def averaging_options(lib):
    return {
        "swa-default": {},
        "swa-use-buffers": {"use_buffers": True},
        "ema-multi": {"multi_avg_fn": lib.get_ema_multi_avg_fn(0.9)},
        "ema-multi-use-buffers": {"multi_avg_fn": lib.get_ema_multi_avg_fn(0.8),
                                  "use_buffers": True},
        "ema-single": {"avg_fn": lib.get_ema_avg_fn(0.95)},
        "swa-single": {"avg_fn": lib.get_swa_avg_fn()},
        "swa-multi": {"multi_avg_fn": lib.get_swa_multi_avg_fn()},
        "custom-avg-fn": {"avg_fn": lambda avg, cur, n: 0.5 * avg + 0.5 * cur},
        "device-given": {"device": "cpu"},
        "swa-multi-integer-buffers": {"multi_avg_fn": lib.get_swa_multi_avg_fn(),
                                      "use_buffers": True},
    }


OPTION_NAMES = list(averaging_options(swa_utils))[:-1]


def train_and_average(lib, options_name, dtype, steps=6):
    """Train a small BatchNorm network with SGD, folding every step into the average."""
    model = make_model(dtype)
    averaged = lib.AveragedModel(model, **averaging_options(lib)[options_name])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for inputs in batches(steps, dtype):
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()
        averaged.update_parameters(model)
    return averaged


def assert_identical(ours_model, reference_model):
    ours_state, reference_state = ours_model.state_dict(), reference_model.state_dict()
    assert list(ours_state) == list(reference_state)
    for key in reference_state:
        assert ours_state[key].dtype == reference_state[key].dtype, key
        assert torch.equal(ours_state[key], reference_state[key]), key


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("options_name", OPTION_NAMES)
def test_averaged_model_matches_torch_bit_for_bit(options_name, dtype):
    reference = train_and_average(swa_utils, options_name, dtype)
    averaged = train_and_average(ours, options_name, dtype)
    assert averaged.n_averaged.item() == 6
    assert_identical(averaged, reference)
    inputs = batches(1, dtype)[0]
    averaged.eval()
    reference.eval()
    assert torch.equal(averaged(inputs), reference(inputs))


def test_averaged_model_is_the_mean_of_the_weights_it_was_given():
    """The claim itself, not just agreement: SWA after n updates is the plain mean."""
    model = make_model()
    averaged = ours.AveragedModel(model)
    snapshots = []
    for scale in (1.0, 2.0, 4.0, 8.0):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
        snapshots.append([p.detach().clone() for p in model.parameters()])
        averaged.update_parameters(model)
    for index, p in enumerate(averaged.module.parameters()):
        mean = torch.stack([s[index] for s in snapshots]).mean(0)
        torch.testing.assert_close(p, mean, rtol=1e-12, atol=1e-12)


def test_averaged_model_state_dict_loads_into_torchs_and_back():
    reference = train_and_average(swa_utils, "ema-multi", torch.float64)
    ours_side = ours.AveragedModel(make_model(), multi_avg_fn=ours.get_ema_multi_avg_fn(0.9))
    ours_side.load_state_dict(reference.state_dict())
    assert_identical(ours_side, reference)
    back = swa_utils.AveragedModel(make_model())
    back.load_state_dict(ours_side.state_dict())
    assert_identical(back, reference)


def test_swa_multi_avg_fn_on_an_integer_buffer_raises_like_torch():
    """BatchNorm's ``num_batches_tracked`` is an integer, and torch's multi-tensor SWA divides
    it with addcdiv, which refuses integers: with ``use_buffers=True`` the second update
    raises. (On CUDA this is the default SWA path.)"""
    message = assert_same_error(
        lambda: train_and_average(ours, "swa-multi-integer-buffers", torch.float64),
        lambda: train_and_average(swa_utils, "swa-multi-integer-buffers", torch.float64),
    )
    assert "Integer division with addcdiv" in message


def test_averaging_errors_are_torchs():
    model = make_model()
    assert_same_error(
        lambda: ours.AveragedModel(model, avg_fn=ours.get_swa_avg_fn(),
                                   multi_avg_fn=ours.get_swa_multi_avg_fn()),
        lambda: swa_utils.AveragedModel(model, avg_fn=swa_utils.get_swa_avg_fn(),
                                        multi_avg_fn=swa_utils.get_swa_multi_avg_fn()),
    )
    for decay in (-0.1, 1.5):
        for factory in ("get_ema_multi_avg_fn", "get_ema_avg_fn"):
            assert_same_error(lambda f=factory, d=decay: getattr(ours, f)(d),
                              lambda f=factory, d=decay: getattr(swa_utils, f)(d))


@pytest.mark.parametrize(
    "batch_kind", ["tensor", "list", "tuple"],
)
@pytest.mark.parametrize("start_in_eval", [False, True], ids=["from-train", "from-eval"])
def test_update_bn_matches_torch(batch_kind, start_in_eval):
    def loader():
        for inputs in batches(5):
            yield {"tensor": inputs, "list": [inputs, 0], "tuple": (inputs, 0)}[batch_kind]

    models = []
    for update_bn in (swa_utils.update_bn, ours.update_bn):
        model = make_model()
        model.train(not start_in_eval)
        model[1].momentum = 0.3
        update_bn(loader(), model, device="cpu" if batch_kind == "list" else None)
        assert model.training is not start_in_eval and model[1].momentum == 0.3
        models.append(model)
    assert_identical(models[1], models[0])


def test_update_bn_does_not_read_the_loader_without_batchnorm():
    def loader():
        raise AssertionError("the loader was read")
        yield

    model = torch.nn.Linear(3, 1)
    ours.update_bn(loader(), model)
    swa_utils.update_bn(loader(), model)


def test_averaging_names_are_all_of_torchs():
    assert set(ours.__all__) == set(swa_utils.__all__)
    for name in ours.__all__:
        assert getattr(ours, name).__module__.startswith("optim_lessons")


def test_swalr_drives_an_averaging_run_like_torch():
    """The SWA recipe end to end: SGD, SWALR from step 3 on, averaging each step."""
    results = []
    for lib in (swa_utils, ours):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        averaged = lib.AveragedModel(model)
        scheduler = lib.SWALR(optimizer, swa_lr=0.05, anneal_epochs=2)
        for inputs in batches(6):
            optimizer.zero_grad()
            model(inputs).square().mean().backward()
            optimizer.step()
            averaged.update_parameters(model)
            scheduler.step()
        lib.update_bn(batches(3), averaged)
        results.append((copy.deepcopy(averaged), scheduler.get_last_lr()))
    assert results[0][1] == results[1][1]
    assert_identical(results[1][0], results[0][0])
