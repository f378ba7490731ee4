"""optim_lessons.checkpoints: a resumed run continues exactly like an uninterrupted one."""

from __future__ import annotations

import copy
import datetime
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from optim_lessons.checkpoints import (
    CheckpointError,
    largest_difference,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from optim_lessons.data import TensorLoader

TOTAL_STEPS = 24


def make_run(seed: int = 0):
    """A small model with dropout (so the global RNG matters), Adam and a one-cycle schedule."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=TOTAL_STEPS)
    data = torch.Generator().manual_seed(123)
    loader = TensorLoader(
        torch.randn(40, 6, generator=data), torch.randint(0, 3, (40,), generator=data), batch_size=8
    )
    return model, optimizer, scheduler, loader


def train_steps(model, optimizer, scheduler, loader, steps: int) -> None:
    done = 0
    while done < steps:
        for inputs, labels in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
            scheduler.step()
            done += 1
            if done == steps:
                return


def test_loading_restores_model_optimizer_and_scheduler_exactly(tmp_path):
    first = make_run()
    train_steps(*first, 7)
    model, optimizer, scheduler, loader = first
    save_checkpoint(
        tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler, loader=loader
    )

    resumed = make_run(seed=1)  # different initial weights: the checkpoint overwrites them
    load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
    )
    assert largest_difference(model, resumed[0]) == 0.0
    assert resumed[2].last_epoch == 7
    assert resumed[1].param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert resumed[1].param_groups[0]["betas"] == optimizer.param_groups[0]["betas"]
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed[1].state_dict()["state"][index][key]), (index, key)


def test_resume_at_an_epoch_boundary_matches_the_uninterrupted_run_exactly(tmp_path):
    reference = make_run()
    train_steps(*reference, TOTAL_STEPS - 4)

    first = make_run()
    train_steps(*first, 10)  # two whole passes of 5 batches
    save_checkpoint(
        tmp_path / "run.pt",
        model=first[0],
        optimizer=first[1],
        scheduler=first[2],
        loader=first[3],
        extra={"epoch": 2},
    )
    torch.manual_seed(999)
    resumed = make_run(seed=1)
    extra = load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
    )
    train_steps(*resumed, TOTAL_STEPS - 4 - 10)

    assert extra == {"epoch": 2}
    assert largest_difference(reference[0], resumed[0]) == 0.0
    reference_state = reference[1].state_dict()["state"]
    resumed_state = resumed[1].state_dict()["state"]
    for index, state in reference_state.items():
        for key, value in state.items():
            assert torch.equal(value, resumed_state[index][key]), (index, key)


def test_resume_without_restoring_the_random_state_diverges(tmp_path):
    reference = make_run()
    train_steps(*reference, 15)
    first = make_run()
    train_steps(*first, 10)
    save_checkpoint(
        tmp_path / "run.pt", model=first[0], optimizer=first[1], scheduler=first[2], loader=first[3]
    )
    torch.manual_seed(999)
    resumed = make_run(seed=1)
    load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
        restore_rng=False,
    )
    train_steps(*resumed, 5)
    assert largest_difference(reference[0], resumed[0]) > 0.0


def test_checkpoint_file_loads_in_weights_only_mode(tmp_path):
    model, optimizer, scheduler, loader = make_run()
    train_steps(model, optimizer, scheduler, loader, 3)
    save_checkpoint(
        tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler, loader=loader
    )
    checkpoint = torch.load(tmp_path / "run.pt", weights_only=True)
    assert set(checkpoint) == {
        "version", "model", "optimizer_class", "optimizer", "scheduler_class", "scheduler", "rng",
        "extra",
    }  # fmt: skip
    assert not list(tmp_path.glob("*.partial"))


def test_rng_state_round_trip_restores_torch_python_numpy_and_loader():
    loader = TensorLoader(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long), batch_size=5)
    state = rng_state(loader)
    expected = (torch.rand(3), random.random(), numpy.random.rand(), [b[0].sum() for b in loader])
    torch.rand(5)
    random.random()
    numpy.random.rand(4)
    list(loader)
    set_rng_state(state, loader)
    again = (torch.rand(3), random.random(), numpy.random.rand(), [b[0].sum() for b in loader])
    assert torch.equal(expected[0], again[0])
    assert expected[1:3] == again[1:3]


def test_loading_moves_optimizer_state_to_the_dtype_of_its_parameters(tmp_path):
    model, optimizer, scheduler, loader = make_run()
    train_steps(model, optimizer, scheduler, loader, 3)
    save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler)

    wide, wide_optimizer, wide_scheduler, _ = make_run()
    wide.double()  # a module moves its parameters in place: the optimizer still holds them
    load_checkpoint(
        tmp_path / "run.pt", model=wide, optimizer=wide_optimizer, scheduler=wide_scheduler
    )
    state = wide_optimizer.state[wide[0].weight]
    assert state["exp_avg"].dtype == torch.float64
    assert state["step"].dtype == torch.float32  # the step counter keeps its own dtype


def test_largest_difference_refuses_models_with_different_tensors():
    with pytest.raises(ValueError, match="different tensors"):
        largest_difference(nn.Linear(2, 2), nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError, match="shape"):
        largest_difference(nn.Linear(2, 2), nn.Linear(3, 2))


def test_load_checkpoint_refuses_a_scheduler_when_none_was_saved(tmp_path):
    model, optimizer, scheduler, _ = make_run()
    save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer)
    with pytest.raises(ValueError, match="no scheduler state"):
        load_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler)


# ----------------------------------------------------------------------------- faults and bad input

REPO = Path(__file__).resolve().parents[1]


def small_run(seed: int = 0, optimizer_class=torch.optim.Adam, **optimizer_kwargs):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    optimizer = optimizer_class(model.parameters(), **optimizer_kwargs)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer):
    """Everything a load could change, copied."""
    return (
        {name: tensor.clone() for name, tensor in model.state_dict().items()},
        copy.deepcopy(optimizer.state_dict()),
    )


def assert_unchanged(before, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    weights, optimizer_state = before
    assert largest_difference(weights, model) == 0.0
    after = optimizer.state_dict()
    assert after["param_groups"] == optimizer_state["param_groups"]
    assert after["state"].keys() == optimizer_state["state"].keys()
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            assert torch.equal(after["state"][index][key], value), (index, key)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial"))


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        **kwargs,
    )


def test_two_processes_saving_the_same_path_leave_one_whole_checkpoint(tmp_path):
    """Both save their own model as fast as they can, at the same time, until told to stop."""
    path, stop = tmp_path / "run.pt", tmp_path / "stop"
    writer = """
        import os, sys, torch
        from torch import nn
        from optim_lessons.checkpoints import load_checkpoint, save_checkpoint
        seed, path, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        torch.manual_seed(seed)
        model = nn.Linear(200, 200)  # 160 kB: each write takes a while
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        print("ready", flush=True)
        saves = 0
        while not os.path.exists(stop) or saves < 10:
            save_checkpoint(path, model=model, optimizer=optimizer, extra={"seed": seed})
            saves += 1
            load_checkpoint(path, model=nn.Linear(200, 200), optimizer=None)  # never half a file
        print(saves)
    """
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(writer))
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(seed), str(path), str(stop)],
            cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for process in writers:  # both are saving now...
        assert process.stdout.readline() == "ready\n"
    time.sleep(0.5)  # ...and keep at it together for half a second
    stop.touch()
    for process in writers:
        output, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
        assert int(output) >= 10

    model = nn.Linear(200, 200)
    extra = load_checkpoint(
        path, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1)
    )
    torch.manual_seed(extra["seed"])
    assert largest_difference(model, nn.Linear(200, 200)) == 0.0  # whole, and one of the two
    assert leftovers(tmp_path) == []


def test_a_save_killed_midway_leaves_the_previous_checkpoint_and_the_next_save_tidies_up(
    tmp_path,
):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer, extra={"epoch": 1})
    killed = run_python(
        f"""
        import os, signal, torch
        from torch import nn
        from optim_lessons import checkpoints
        real_save = torch.save
        def save_then_die(obj, f, *args, **kwargs):
            f.write(b"PK\\x03\\x04 half a zip archive")  # the first bytes of the file...
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # ...and the power goes: kill -9
        checkpoints.torch.save = save_then_die
        model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
        optimizer = torch.optim.Adam(model.parameters())
        checkpoints.save_checkpoint({str(path)!r}, model=model, optimizer=optimizer)
        """
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(leftovers(tmp_path)) == 1  # the dead process could not remove its temporary file

    resumed, resumed_optimizer = small_run(seed=5)
    assert load_checkpoint(path, model=resumed, optimizer=resumed_optimizer) == {"epoch": 1}
    assert largest_difference(model, resumed) == 0.0

    save_checkpoint(path, model=model, optimizer=optimizer, extra={"epoch": 2})
    assert leftovers(tmp_path) == []  # its process is gone, so the next save removed it


def test_a_save_leaves_the_temporary_files_of_a_live_writer_alone(tmp_path):
    from optim_lessons._files import owner_tag

    in_flight = tmp_path / f".run.pt.{owner_tag()}.abc123.partial"  # this very process
    in_flight.write_bytes(b"being written")
    model, optimizer = small_run()
    save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer)
    assert in_flight.exists()


@pytest.mark.parametrize(
    "extra, what",
    [
        ({"started": datetime.datetime(2024, 5, 1)}, "extra['started'] (a datetime)"),
        ({"callback": lambda: None}, "extra['callback'] (a function) cannot be saved at all"),
        ({"run": {"path": Path("/tmp")}}, "extra['run'] (a dict)"),
    ],
    ids=["datetime", "lambda", "nested-path"],
)
def test_an_extra_that_would_not_load_back_is_refused_at_save_time(tmp_path, extra, what):
    path = tmp_path / "run.pt"
    model, optimizer = small_run()
    save_checkpoint(path, model=model, optimizer=optimizer, extra={"epoch": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError) as error:
        save_checkpoint(path, model=model, optimizer=optimizer, extra=extra)
    assert what in str(error.value)
    assert "weights-only" in str(error.value)
    assert path.read_bytes() == before  # the previous checkpoint is untouched
    assert leftovers(tmp_path) == []


def test_an_extra_that_is_not_a_dict_is_refused(tmp_path):
    model, optimizer = small_run()
    with pytest.raises(TypeError, match="extra must be a dict"):
        save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, extra=[1, 2])
    assert list(tmp_path.iterdir()) == []


def test_a_failure_inside_torch_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    from optim_lessons import checkpoints

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"some bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    model, optimizer = small_run()
    with pytest.raises(OSError) as error:
        save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer)
    assert "No space left on device" in str(error.value)
    assert f"Cannot save the checkpoint {tmp_path / 'run.pt'}" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_saving_into_a_missing_folder_names_it(tmp_path):
    model, optimizer = small_run()
    with pytest.raises(FileNotFoundError, match="does not exist. Create it first"):
        save_checkpoint(tmp_path / "nowhere" / "run.pt", model=model, optimizer=optimizer)


def test_saving_into_a_read_only_folder_names_the_path_as_a_non_root_user(request):
    """Root may write anywhere, so the save runs in a child process that drops to ``nobody``
    (after importing everything it needs: the interpreter's own files are not readable then)."""
    # pytest's tmp_path lies in a folder only root may enter: use one that anybody may enter
    outer = Path(tempfile.mkdtemp(prefix="optim-lessons-read-only-"))
    outer.chmod(0o755)
    folder = outer / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    request.addfinalizer(lambda: shutil.rmtree(outer))
    result = run_python(
        f"""
        import os, pathlib, sys, tempfile, torch
        from torch import nn
        from optim_lessons.checkpoints import save_checkpoint
        model = nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with tempfile.TemporaryDirectory() as warm:  # load every lazy import once, as root
            save_checkpoint(pathlib.Path(warm) / "w.pt", model=model, optimizer=optimizer)
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        try:
            save_checkpoint({str(folder / "run.pt")!r}, model=model, optimizer=optimizer)
        except PermissionError as error:
            print("PermissionError:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"Cannot save the checkpoint {folder / 'run.pt'}: Permission denied" in result.stdout
    assert f"Make sure the folder {folder} is writable" in result.stdout
    assert list(folder.iterdir()) == []


def write_then(path: Path, content: bytes | None = None, obj=None) -> Path:
    if content is not None:
        path.write_bytes(content)
    else:
        torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    "make, exception, message",
    [
        (
            lambda p: write_then(p, b""),
            CheckpointError,
            "is empty (0 bytes)",
        ),
        (
            lambda p: write_then(p, obj=torch.zeros(3)),
            CheckpointError,
            "holds a Tensor, not a checkpoint written by save_checkpoint",
        ),
        (
            lambda p: write_then(p, obj=nn.Linear(4, 5).state_dict()),
            CheckpointError,
            "holds a model's bare state_dict, not a checkpoint written by save_checkpoint "
            "(which holds the model, the optimizer and the random state): load it with "
            "model.load_state_dict(torch.load(path))",
        ),
        (
            lambda p: write_then(p, b"these are not the bytes of a torch file"),
            CheckpointError,
            "is not a readable checkpoint (torch.load said:",
        ),
        (
            lambda p: write_then(p, obj={"when": datetime.date(2024, 1, 1)}),
            CheckpointError,
            "holds a datetime.date, which the safe weights-only load refuses",
        ),
        (
            lambda p: p,
            FileNotFoundError,
            "No checkpoint at",
        ),
    ],
    ids=["zero-bytes", "bare-tensor", "model-state-dict", "garbage", "unsafe-object", "missing"],
)
def test_a_file_that_is_not_a_checkpoint_gives_an_error_naming_it(
    tmp_path, make, exception, message
):
    path = make(tmp_path / "run.pt")
    model, optimizer = small_run()
    before = snapshot(model, optimizer)
    with pytest.raises(exception) as error:
        load_checkpoint(path, model=model, optimizer=optimizer)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert_unchanged(before, model, optimizer)


def test_a_truncated_checkpoint_is_refused_and_nothing_changes(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    other, other_optimizer = small_run(seed=1)
    before = snapshot(other, other_optimizer)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_checkpoint(path, model=other, optimizer=other_optimizer)
    assert_unchanged(before, other, other_optimizer)


def test_a_model_whose_second_layer_differs_is_refused_before_any_weight_changes(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer)
    torch.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))  # three outputs, not two
    other_optimizer = torch.optim.Adam(other.parameters())
    before = snapshot(other, other_optimizer)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model=other, optimizer=other_optimizer)
    assert f"{path} does not fit the objects given, so nothing was loaded" in str(error.value)
    assert "2.weight has shape (2, 5) in the checkpoint and (3, 5) in the model" in str(error.value)
    assert "2.bias has shape (2,) in the checkpoint and (3,) in the model" in str(error.value)
    assert_unchanged(before, other, other_optimizer)


def test_a_model_with_other_tensor_names_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run()
    save_checkpoint(path, model=model, optimizer=optimizer)
    other = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2, bias=False))
    other_optimizer = torch.optim.Adam(other.parameters())
    with pytest.raises(CheckpointError, match="the model has no 2.bias"):
        load_checkpoint(path, model=other, optimizer=other_optimizer)


def test_an_optimizer_with_two_groups_is_refused_before_the_model_changes(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer)
    other, _ = small_run(seed=1)
    two_groups = torch.optim.Adam(
        [{"params": other[0].parameters()}, {"params": other[2].parameters(), "lr": 0.1}]
    )
    before = snapshot(other, two_groups)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model=other, optimizer=two_groups)
    assert (
        "its optimizer has 1 parameter group(s) of [4] parameters, the optimizer given has 2 of "
        "[2, 2]: build the optimizer with the same param groups as the run that saved it"
    ) in str(error.value)
    assert_unchanged(before, other, two_groups)


@pytest.mark.parametrize(
    "other_class, kwargs",
    [(torch.optim.AdamW, {}), (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})],
    ids=["Adam-into-AdamW", "Adam-into-SGD"],
)
def test_a_checkpoint_of_one_optimizer_class_is_refused_by_another(tmp_path, other_class, kwargs):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0, optimizer_class=torch.optim.Adam)
    save_checkpoint(path, model=model, optimizer=optimizer)
    other, other_optimizer = small_run(seed=1, optimizer_class=other_class, **kwargs)
    before = snapshot(other, other_optimizer)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model=other, optimizer=other_optimizer)
    name = other_class.__name__
    assert (
        f"it holds the state of a Adam optimizer, but a {name} was given: build a Adam over the "
        "same parameters to resume"
    ) in str(error.value)
    assert "or pass optimizer=None to load the model alone" in str(error.value)
    assert_unchanged(before, other, other_optimizer)

    load_checkpoint(path, model=other, optimizer=None)  # the way out the message names
    assert largest_difference(model, other) == 0.0


def test_the_book_and_torch_optimizers_of_one_algorithm_share_checkpoints(tmp_path):
    import optim_lessons.optimizers

    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0, optimizer_class=torch.optim.Adam)
    save_checkpoint(path, model=model, optimizer=optimizer)
    other, ours = small_run(seed=1, optimizer_class=optim_lessons.optimizers.Adam)
    load_checkpoint(path, model=other, optimizer=ours)
    assert largest_difference(model, other) == 0.0


def test_a_scheduler_of_another_class_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run()
    save_checkpoint(
        path,
        model=model,
        optimizer=optimizer,
        scheduler=lr_scheduler.StepLR(optimizer, step_size=2),
    )
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    with pytest.raises(
        CheckpointError, match="holds the state of a StepLR scheduler, but a Cosine"
    ):
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=cosine)


def test_a_failure_inside_torch_after_the_checks_puts_everything_back(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer)
    other, other_optimizer = small_run(seed=1)
    before = snapshot(other, other_optimizer)

    def refuse(*args, **kwargs):
        raise RuntimeError("something torch did not like")

    real_load = other.load_state_dict
    calls = []

    def copy_one_tensor_then_fail(state_dict, *args, **kwargs):
        """torch's first call: the first weight is copied, then something fails."""
        calls.append(1)
        if len(calls) > 1:  # the call that puts the model back
            return real_load(state_dict, *args, **kwargs)
        with torch.no_grad():
            other[0].weight.copy_(state_dict["0.weight"])
        raise RuntimeError("something torch did not like")

    monkeypatch.setattr(other, "load_state_dict", copy_one_tensor_then_fail)  # loaded last
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model=other, optimizer=other_optimizer)
    assert str(path) in str(error.value)
    assert "something torch did not like" in str(error.value)
    assert "the model, optimizer, scheduler and random state were put back" in str(error.value)
    assert_unchanged(before, other, other_optimizer)


def test_a_version_1_checkpoint_still_loads(tmp_path):
    path = tmp_path / "run.pt"
    model, optimizer = small_run(seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer, extra={"epoch": 3})
    old = torch.load(path, weights_only=True)
    old["version"] = 1
    del old["optimizer_class"], old["scheduler_class"]
    torch.save(old, path)
    other, other_optimizer = small_run(seed=1)
    assert load_checkpoint(path, model=other, optimizer=other_optimizer) == {"epoch": 3}
    assert largest_difference(model, other) == 0.0
