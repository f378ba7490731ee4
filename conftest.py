"""Loaded by pytest before it collects anything: puts the numerics policy in place before torch
is imported, here and in every Jupyter kernel and xdist worker started from this process.
See optim_lessons/numerics.py."""

import pytest

from optim_lessons import numerics

numerics.apply()

#: Tests that check behaviour of the pinned torch (requirements.txt) which older releases in
#: pyproject.toml's range do not have. They carry the mark ``pinned_torch``, and
#: ``make test-compat`` (the oldest torch declared) leaves them out. Each key is a test
#: function; the value says what torch 2.9.1 did differently (seen there), then which of its
#: cases (by the start of their ids) are marked, or None for all of them.
_LBFGS_MAXIMIZE = ("LBFGS has no maximize", None)
PINNED_TORCH = {
    "tests/test_optim_lbfgs.py::test_lbfgs_matches_torch_for_every_option_combination":
        _LBFGS_MAXIMIZE,
    "tests/test_optim_lbfgs.py::test_lbfgs_matches_torch_on_a_run_that_diverges": _LBFGS_MAXIMIZE,
    "tests/test_optim_lbfgs.py::test_lbfgs_matches_torch_on_complex_parameters": _LBFGS_MAXIMIZE,
    "tests/test_optim_lbfgs.py::test_lbfgs_with_an_empty_group_returns_the_closures_loss_like_torch":
        _LBFGS_MAXIMIZE,
    "tests/test_optim_lbfgs.py::test_lbfgs_line_search_matches_torch_through_every_branch": (
        "the strong Wolfe search evaluates the loss other times (78 against 88) and ends elsewhere",
        ("wavy-small-lr-float32", "rosenbrock-float64"),
    ),
    "tests/test_optim_lbfgs.py::test_lbfgs_rejects_a_param_group_added_later_at_step_like_torch":
        ("LBFGS's assertion has no message", None),
    "tests/test_optim_db.py::test_constructor_takes_torchs_arguments_in_torchs_order_kinds_and_defaults":
        ("LBFGS's signature has no maximize", ("LBFGS",)),
    "tests/test_optim_db.py::test_param_groups_and_state_dict_carry_torchs_keys":
        ("LBFGS's param groups have no maximize key", ("LBFGS",)),
    "tests/test_optim_db.py::test_every_switch_combination_is_refused_accepted_and_stepped_like_torch":
        ("Adagrad refuses or accepts other switch combinations", ("Adagrad",)),
    "tests/test_optim_adagrad.py::test_adagrad_seeds_a_later_param_group_from_the_defaults_like_torch":
        ("Adagrad creates no 'sum' state for a group added later", None),
    "tests/test_optim_adam.py::test_adam_matches_torch_with_tensor_betas":
        ("Adam's for-loop path refuses tensor betas (addcmul_ wants a number)", None),
    "tests/test_optim_muon.py::test_muon_matches_torch_with_other_newton_schulz_settings":
        ("Muon has no adjust_lr_fn='spectral_unclamped'", ("{'adjust_lr_fn': 'spectral_un",)),
    "tests/test_schedulers_contract.py::test_bad_input_raises_what_torch_raises_word_for_word": (
        "these two errors are worded differently",
        ("resume-without-initial-lr", "SWALR-unknown-anneal-strategy"),
    ),
    "tests/test_schedulers_parity.py::test_scheduler_matches_torch_bit_for_bit":
        ("SWALR computes other rates", ("SWALR-",)),
    "tests/test_schedulers_parity.py::test_scheduler_matches_torch_with_three_param_groups":
        ("SWALR computes other rates", ("SWALR-",)),
    "tests/test_schedulers_parity.py::test_scheduler_matches_torch_with_tensor_learning_rates": (
        "SWALR, and SequentialLR and ChainedScheduler with tensor rates, compute other rates",
        ("SWALR-", "SequentialLR-warmup-then-cosine",
         "SequentialLR-three-with-closed-form-handovers", "SequentialLR-nested-chain-first",
         "ChainedScheduler-warmup-times-decay", "ChainedScheduler-three"),
    ),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        function, _, case = item.nodeid.partition("[")
        if function in PINNED_TORCH:
            cases = PINNED_TORCH[function][1]
            if cases is None or case.startswith(cases):
                item.add_marker(pytest.mark.pinned_torch)
