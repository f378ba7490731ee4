"""The data cache (where files come from; bad or absent files) and the fast loaders."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from optim_lessons import data
from optim_lessons.data import (
    CLASS_NAMES,
    IDX_FILES,
    NORMALIZATION,
    DataUnavailableError,
    TensorLoader,
    get_loaders,
    load_tensors,
    prepare,
    torchvision_dataset,
)
from optim_lessons.data import files as data_files
from optim_lessons.data.__main__ import main as data_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def good_root() -> Path:
    """The real cache, prepared once (from Debian's files on this machine)."""
    return prepare("fashion_mnist")


def copy_good_files(good_root: Path, root: Path) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for spec in IDX_FILES:
        shutil.copyfile(good_root / "FashionMNIST" / "raw" / spec.name, raw / spec.name)
    return raw


def leftovers(root: Path) -> list[str]:
    """Every file or folder under ``root`` whose name marks an unfinished write."""
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.name.endswith(".partial") or path.name.startswith(".download-")
    ]


@pytest.fixture
def offline_without_debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """No Debian files and no network: the download raises like urllib does offline."""
    empty = tmp_path / "no-debian-here"
    empty.mkdir()
    monkeypatch.setitem(data.DEBIAN_DIRS, "fashion_mnist", empty)
    attempts: list[str] = []

    def no_network(name: str, destination_root: Path) -> None:
        attempts.append(name)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data_files, "_torchvision_download", no_network)
    return attempts


# ----------------------------------------------------------------------------- loading


def test_load_tensors_gives_all_fashion_mnist_images_normalized(good_root: Path) -> None:
    images, labels = load_tensors("fashion_mnist", train=True)
    assert images.shape == (60_000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    # normalized with the training set's own statistics: mean 0, standard deviation 1
    assert abs(images.mean().item()) < 1e-3
    assert abs(images.std().item() - 1) < 1e-3
    test_images, test_labels = load_tensors("fashion_mnist", train=False)
    assert test_images.shape == (10_000, 1, 28, 28) and test_labels.shape == (10_000,)


def test_normalization_constants_match_the_training_pixels(good_root: Path) -> None:
    dataset = torchvision_dataset(train=True, transform=None)
    pixels = dataset.data.float() / 255
    mean, std = NORMALIZATION["fashion_mnist"]
    assert pixels.mean().item() == pytest.approx(mean, abs=5e-5)
    assert pixels.std().item() == pytest.approx(std, abs=5e-5)


def test_torchvision_dataset_samples_equal_the_fast_tensors(good_root: Path) -> None:
    dataset = torchvision_dataset("fashion_mnist", train=False)
    images, labels = load_tensors("fashion_mnist", train=False)
    for index in (0, 1, 9_999):
        image, label = dataset[index]
        assert image.shape == (1, 28, 28)
        torch.testing.assert_close(image, images[index], rtol=0, atol=1e-5)
        assert label == labels[index].item()


def test_class_names_are_the_ten_fashion_mnist_classes(good_root: Path) -> None:
    assert len(CLASS_NAMES) == 10
    assert list(CLASS_NAMES) == torchvision_dataset(transform=None).classes


def test_dataset_names_accept_common_spellings() -> None:
    for spelling in ("fashion_mnist", "FashionMNIST", "fashion-mnist"):
        assert data.canonical_name(spelling) == "fashion_mnist"
    assert data.canonical_name("MNIST") == "mnist"
    with pytest.raises(ValueError, match="Unknown data set 'cifar10'"):
        data.canonical_name("cifar10")


# ----------------------------------------------------------------------------- the cache


def test_root_argument_beats_environment_variable_which_beats_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    assert data.data_root() == data.DEFAULT_ROOT
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "from-env"))
    assert data.data_root() == tmp_path / "from-env"
    assert data.data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_debian_files_are_unpacked_into_an_empty_root(tmp_path: Path) -> None:
    root = prepare("fashion_mnist", root=tmp_path)
    raw = root / "FashionMNIST" / "raw"
    for spec in IDX_FILES:
        assert (raw / spec.name).stat().st_size == spec.expected_bytes
    # the unpacked bytes are exactly what is inside Debian's .gz
    with gzip.open(data.DEBIAN_DIRS["fashion_mnist"] / "train-labels-idx1-ubyte.gz") as packed:
        assert (raw / "train-labels-idx1-ubyte").read_bytes() == packed.read()
    assert leftovers(tmp_path) == []
    assert data.cache_problems("fashion_mnist", tmp_path) == {}


def test_environment_variable_chooses_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, good_root: Path
) -> None:
    copy_good_files(good_root, tmp_path)
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    assert prepare() == tmp_path


def test_truncated_cache_file_is_detected_and_rebuilt(tmp_path: Path, good_root: Path) -> None:
    raw = copy_good_files(good_root, tmp_path)
    victim = raw / "train-images-idx3-ubyte"
    with open(victim, "r+b") as f:
        f.truncate(1_000_000)  # as if a copy had been interrupted
    assert "truncated" in data.cache_problems("fashion_mnist", tmp_path)["train-images-idx3-ubyte"]
    prepare("fashion_mnist", root=tmp_path)
    assert victim.stat().st_size == 16 + 60_000 * 784
    assert data.cache_problems("fashion_mnist", tmp_path) == {}


def test_file_with_wrong_header_is_detected_even_at_the_right_size(
    tmp_path: Path, good_root: Path
) -> None:
    raw = copy_good_files(good_root, tmp_path)
    labels = raw / "t10k-labels-idx1-ubyte"
    content = bytearray(labels.read_bytes())
    content[7] ^= 0xFF  # corrupt the item count, keep the length
    labels.write_bytes(bytes(content))
    assert "items" in data.cache_problems("fashion_mnist", tmp_path)["t10k-labels-idx1-ubyte"]
    images = raw / "t10k-images-idx3-ubyte"
    content = bytearray(images.read_bytes())
    content[3] = 0x01  # the magic number of a labels file
    images.write_bytes(bytes(content))
    assert "magic" in data.cache_problems("fashion_mnist", tmp_path)["t10k-images-idx3-ubyte"]
    prepare("fashion_mnist", root=tmp_path)
    assert data.cache_problems("fashion_mnist", tmp_path) == {}


def test_good_cache_is_used_without_looking_anywhere_else(
    tmp_path: Path, good_root: Path, offline_without_debian: list[str]
) -> None:
    copy_good_files(good_root, tmp_path)
    assert prepare("fashion_mnist", root=tmp_path) == tmp_path
    assert offline_without_debian == []  # no download was attempted


def test_no_data_anywhere_raises_one_error_naming_the_three_ways_out(
    tmp_path: Path, offline_without_debian: list[str]
) -> None:
    root = tmp_path / "cache"
    with pytest.raises(DataUnavailableError) as caught:
        prepare("fashion_mnist", root=root)
    assert isinstance(caught.value, RuntimeError)
    message = str(caught.value)
    assert data.DATA_ENV_VAR in message and "root=" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "online" in message and "torchvision" in message
    assert "Temporary failure in name resolution" in message  # what the download said
    assert offline_without_debian == ["fashion_mnist"]
    raw = root / "FashionMNIST" / "raw"
    assert list(raw.iterdir()) == []  # nothing half-written where a good file belongs
    assert leftovers(root) == []


def test_mnist_has_no_debian_package_and_says_so(
    tmp_path: Path, offline_without_debian: list[str]
) -> None:
    with pytest.raises(DataUnavailableError, match="no Debian package provides this data set"):
        prepare("mnist", root=tmp_path)


def test_download_that_delivers_a_truncated_file_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    good_root: Path,
    offline_without_debian: list[str],
) -> None:
    def broken_download(name: str, destination_root: Path) -> None:
        copy_good_files(good_root, destination_root)
        with open(
            destination_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", "r+b"
        ) as f:
            f.truncate(4096)

    monkeypatch.setattr(data_files, "_torchvision_download", broken_download)
    root = tmp_path / "cache"
    with pytest.raises(DataUnavailableError, match="train-images-idx3-ubyte: 4096 bytes"):
        prepare("fashion_mnist", root=root)
    raw = root / "FashionMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert leftovers(root) == []


def test_download_fills_the_cache_when_debian_files_are_missing(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    good_root: Path,
    offline_without_debian: list[str],
) -> None:
    monkeypatch.setattr(
        data_files,
        "_torchvision_download",
        lambda name, destination_root: copy_good_files(good_root, destination_root),
    )
    root = prepare("fashion_mnist", root=tmp_path / "cache")
    assert data.cache_problems("fashion_mnist", root) == {}
    assert leftovers(root) == []


def test_command_line_prepares_the_cache_and_says_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, good_root: Path
) -> None:
    copy_good_files(good_root, tmp_path)
    assert data_main(["--root", str(tmp_path)]) == 0
    assert str(tmp_path / "FashionMNIST" / "raw") in capsys.readouterr().out


def test_command_line_exits_nonzero_with_the_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, offline_without_debian: list[str]
) -> None:
    assert data_main(["--root", str(tmp_path / "cache")]) == 1
    error = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in error and data.DATA_ENV_VAR in error
    assert leftovers(tmp_path) == []


def test_module_run_as_a_program_fails_with_status_1_when_the_root_cannot_be_created(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("this is a file, so no folder can be created under it")
    environment = dict(os.environ, **{data.DATA_ENV_VAR: str(not_a_folder)})
    result = subprocess.run(
        [sys.executable, "-m", "optim_lessons.data"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "cannot create" in result.stderr and "Three ways out" in result.stderr


# ----------------------------------------------------------------------------- TensorLoader


def numbered(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose single pixel is their own index, so batches can be traced back."""
    index = torch.arange(n)
    return index.float().view(n, 1), index


def test_tensor_loader_visits_every_sample_once_per_epoch_in_a_new_order() -> None:
    images, labels = numbered(10)
    loader = TensorLoader(images, labels, batch_size=4, shuffle=True, seed=0)
    epochs = [torch.cat([batch_labels for _, batch_labels in loader]) for _ in range(2)]
    for seen in epochs:
        assert sorted(seen.tolist()) == list(range(10))
    assert epochs[0].tolist() != epochs[1].tolist()
    for inputs, batch_labels in loader:
        assert inputs.view(-1).long().tolist() == batch_labels.tolist()  # pairs stay together


def test_tensor_loader_length_counts_the_last_partial_batch() -> None:
    images, labels = numbered(60_000)
    loader = TensorLoader(images, labels, batch_size=64)
    assert len(loader) == 938 and loader.dataset_size == 60_000
    sizes = [batch_labels.shape[0] for _, batch_labels in loader]
    assert len(sizes) == 938 and sizes[-1] == 60_000 - 937 * 64 == 32


def test_tensor_loader_order_depends_only_on_its_seed() -> None:
    images, labels = numbered(50)
    first = TensorLoader(images, labels, batch_size=8, seed=3)
    torch.manual_seed(123)  # the global generator plays no part
    second = TensorLoader(images, labels, batch_size=8, seed=3)
    order = [b.tolist() for _, b in first]
    assert order == [b.tolist() for _, b in second]
    assert order != [b.tolist() for _, b in TensorLoader(images, labels, batch_size=8, seed=4)]
    first.manual_seed(3)  # rewinding gives the first epoch again
    assert order == [b.tolist() for _, b in first]


def test_tensor_loader_without_shuffle_keeps_the_order() -> None:
    images, labels = numbered(10)
    loader = TensorLoader(images, labels, batch_size=3, shuffle=False)
    assert [b.tolist() for _, b in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_tensor_loader_rejects_mismatched_inputs_and_bad_batch_sizes() -> None:
    images, labels = numbered(10)
    with pytest.raises(ValueError, match="10 images and 9 labels"):
        TensorLoader(images, labels[:9])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            TensorLoader(images, labels, batch_size=bad)


def test_get_loaders_builds_seeded_subsets_on_the_requested_device(good_root: Path) -> None:
    train_loader, test_loader = get_loaders(
        batch_size=32, device="cpu", seed=1, train_size=1000, test_size=200
    )
    assert train_loader.dataset_size == 1000 and len(train_loader) == 32
    assert test_loader.dataset_size == 200 and not test_loader.shuffle
    assert train_loader.device == torch.device("cpu")
    again, _ = get_loaders(batch_size=32, device="cpu", seed=1, train_size=1000, test_size=200)
    other, _ = get_loaders(batch_size=32, device="cpu", seed=2, train_size=1000, test_size=200)
    assert torch.equal(train_loader.labels, again.labels)
    assert not torch.equal(train_loader.labels, other.labels)
    with pytest.raises(ValueError, match="train_size must be an integer from 1 to 60000"):
        get_loaders(device="cpu", train_size=0)


# ----------------------------------------------------------------------------- faults


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


#: Debian's folder, read before any test points the module at another one.
DEBIAN_FOLDER = Path(data.DEBIAN_DIRS["fashion_mnist"])


def dead_pid() -> int:
    """The id of a process that has just ended."""
    return int(run_python("import os; print(os.getpid())").stdout)


def debian_folder_with(tmp_path: Path, name: str, content: bytes) -> Path:
    """A stand-in for Debian's folder: the real archives, except ``name``, which holds
    ``content``."""
    folder = tmp_path / "debian"
    folder.mkdir()
    for spec in IDX_FILES:
        (folder / f"{spec.name}.gz").symlink_to(DEBIAN_FOLDER / f"{spec.name}.gz")
    (folder / f"{name}.gz").unlink()
    (folder / f"{name}.gz").write_bytes(content)
    return folder


def damaged_archive(name: str) -> bytes:
    """Debian's archive of ``name`` with its compressed bytes overwritten halfway through: the
    gzip header still reads, inflating fails."""
    packed = bytearray((DEBIAN_FOLDER / f"{name}.gz").read_bytes())
    middle = len(packed) // 2
    packed[middle : middle + 64] = bytes(range(64))
    return bytes(packed)


def test_a_damaged_debian_archive_ends_in_the_librarys_error_naming_the_ways_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, good_root: Path, offline_without_debian
) -> None:
    name = "train-labels-idx1-ubyte"
    folder = debian_folder_with(tmp_path, name, damaged_archive(name))
    with pytest.raises(Exception) as raw_error:  # what inflating the archive raises by itself
        with gzip.open(folder / f"{name}.gz") as packed:
            packed.read()
    assert type(raw_error.value).__module__ == "zlib"
    monkeypatch.setitem(data.DEBIAN_DIRS, "fashion_mnist", folder)
    root = tmp_path / "cache"
    raw = copy_good_files(good_root, root)
    (raw / name).unlink()  # only the labels are to be unpacked
    with pytest.raises(DataUnavailableError) as caught:
        prepare("fashion_mnist", root=root)
    message = str(caught.value)
    assert f"Debian: {folder / name}.gz: error: Error -3 while decompressing data" in message
    assert "Three ways out" in message and "apt-get install dataset-fashion-mnist" in message
    assert not (raw / name).exists()
    assert leftovers(root) == []


def test_a_cache_file_with_labels_of_ten_or_more_is_rebuilt(tmp_path: Path, good_root: Path):
    raw = copy_good_files(good_root, tmp_path)
    labels = raw / "t10k-labels-idx1-ubyte"
    content = bytearray(labels.read_bytes())
    content[8 + 17] = 12  # a valid header; the 18th label is 12
    labels.write_bytes(bytes(content))
    problems = data.cache_problems("fashion_mnist", tmp_path)
    assert problems == {"t10k-labels-idx1-ubyte": "labels outside 0..9 (the largest is 12)"}
    prepare("fashion_mnist", root=tmp_path)  # Debian's good copy replaces it
    assert data.cache_problems("fashion_mnist", tmp_path) == {}


def test_labels_of_ten_or_more_everywhere_fail_prepare(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, good_root: Path, offline_without_debian
) -> None:
    name = "t10k-labels-idx1-ubyte"
    content = bytearray((good_root / "FashionMNIST" / "raw" / name).read_bytes())
    content[8:] = bytes([10]) * (len(content) - 8)  # every label is 10
    folder = debian_folder_with(tmp_path, name, gzip.compress(bytes(content)))
    monkeypatch.setitem(data.DEBIAN_DIRS, "fashion_mnist", folder)
    root = tmp_path / "cache"
    raw = copy_good_files(good_root, root)
    (raw / name).write_bytes(bytes(content))
    with pytest.raises(DataUnavailableError) as caught:
        prepare("fashion_mnist", root=root)
    message = str(caught.value)
    assert f"cache: {name}: labels outside 0..9 (the largest is 10)" in message
    assert f"Debian: {folder / name}.gz: DataUnavailableError: {name}: labels outside" in message
    assert "Three ways out" in message


def test_a_run_killed_while_unpacking_leaves_a_file_that_the_next_run_removes(
    tmp_path: Path, good_root: Path
) -> None:
    name = "train-labels-idx1-ubyte"
    raw = copy_good_files(good_root, tmp_path)
    (raw / name).unlink()
    killed = run_python(
        f"""
        import os, shutil, signal
        from optim_lessons.data import files
        def copy_half_then_die(source, out, length=0):
            out.write(source.read(30_000))
            out.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the unpack
        files.shutil.copyfileobj = copy_half_then_die
        files.prepare("fashion_mnist", root={str(tmp_path)!r})
        """
    )
    assert killed.returncode == -signal.SIGKILL
    left = leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(f"FashionMNIST/raw/.{name}.")
    assert not (raw / name).exists()  # nothing half-written under the real name

    prepare("fashion_mnist", root=tmp_path)
    assert leftovers(tmp_path) == []
    assert data.cache_problems("fashion_mnist", tmp_path) == {}


def test_a_good_cache_is_tidied_of_leftovers_from_dead_runs_but_not_of_live_ones(
    tmp_path: Path, good_root: Path, offline_without_debian
) -> None:
    from optim_lessons._files import owner_tag

    raw = copy_good_files(good_root, tmp_path)
    tag = owner_tag().rsplit("-", 1)[0]  # this host
    dead = dead_pid()
    stale_file = raw / f".train-images-idx3-ubyte.{tag}-{dead}.k2j4_x.partial"
    stale_file.write_bytes(b"\0" * 1000)
    stale_staging = raw.parent / f".download-{tag}-{dead}.a8c_z1"
    (stale_staging / "FashionMNIST" / "raw").mkdir(parents=True)
    live_file = raw / f".t10k-images-idx3-ubyte.{owner_tag()}.q9w8e7.partial"
    live_file.write_bytes(b"being written by this very process")
    other_host = raw / f".t10k-labels-idx1-ubyte.someotherhost-{dead}.r5t6y7.partial"
    other_host.write_bytes(b"a process on another machine sharing this folder")

    # names without an owner, as an earlier release wrote them: judged by their age alone
    unowned_old = raw / ".train-labels-idx1-ubyte.x7f2k9q1.partial"
    unowned_old.write_bytes(b"\0" * 100)
    two_hours_ago = time.time() - 7200
    os.utime(unowned_old, (two_hours_ago, two_hours_ago))
    unowned_fresh = raw / ".t10k-images-idx3-ubyte.m3n4b5v6.partial"
    unowned_fresh.write_bytes(b"\0" * 100)

    assert prepare("fashion_mnist", root=tmp_path) == tmp_path
    assert not stale_file.exists() and not stale_staging.exists() and not unowned_old.exists()
    assert live_file.exists() and other_host.exists() and unowned_fresh.exists()
    assert offline_without_debian == []


def test_prepare_in_a_read_only_folder_holding_a_bad_file_names_the_ways_out(
    request: pytest.FixtureRequest, good_root: Path
) -> None:
    """As a user who may not write there: root may write anywhere, so the child process drops
    to ``nobody`` after importing what it needs."""
    outer = Path(tempfile.mkdtemp(prefix="optim-lessons-read-only-"))
    request.addfinalizer(lambda: shutil.rmtree(outer))
    outer.chmod(0o755)
    raw = copy_good_files(good_root, outer)
    with open(raw / "train-images-idx3-ubyte", "r+b") as f:
        f.truncate(1_000_000)
    raw.chmod(0o555)
    raw.parent.chmod(0o555)
    result = run_python(
        f"""
        import os
        from urllib.error import URLError
        from optim_lessons.data import files
        def offline(name, destination_root):
            raise URLError("[Errno -3] Temporary failure in name resolution")
        files._torchvision_download = offline
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        try:
            files.prepare("fashion_mnist", root={str(outer)!r})
        except files.DataUnavailableError as error:
            print("DataUnavailableError:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DataUnavailableError: FashionMNIST is not available")
    assert "Debian: " in result.stdout and "Permission denied" in result.stdout
    assert "download: PermissionError" in result.stdout  # the staging folder, not an escape
    assert f"Note: {raw} is not writable by this user" in result.stdout
    assert "Three ways out" in result.stdout
    raw.chmod(0o755)
    raw.parent.chmod(0o755)
    assert leftovers(outer) == []


def test_tensor_loader_names_a_seed_that_is_not_an_integer() -> None:
    images, labels = numbered(10)
    with pytest.raises(TypeError, match="seed must be an integer .* got None"):
        TensorLoader(images, labels, seed=None)
    loader = TensorLoader(images, labels)
    with pytest.raises(TypeError, match="seed must be an integer .* got '7'"):
        loader.manual_seed("7")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"test_batch_size": 0}, "test_batch_size must be a positive integer, got 0"),
        ({"batch_size": -4}, "batch_size must be a positive integer, got -4"),
        ({"seed": None}, "seed must be an integer"),
    ],
)
def test_get_loaders_names_the_bad_argument_before_reading_any_data(
    tmp_path: Path, offline_without_debian, arguments: dict, message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        get_loaders(root=tmp_path / "empty", **arguments)
    assert offline_without_debian == []
