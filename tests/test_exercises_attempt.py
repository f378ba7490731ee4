"""The wrapper that runs an exercise's self-check on a reader's answer without stopping."""

import doctest

import pytest

import optim_lessons.exercises
from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch05_adaptive import check_lr_decay_steps


def test_the_examples_in_the_docstring_run():
    failures, attempted = doctest.testmod(optim_lessons.exercises)
    assert attempted > 0
    assert failures == 0


def test_a_placeholder_answer_is_not_done(capsys):
    assert attempt(check_lr_decay_steps, ...) is False
    assert capsys.readouterr().out.startswith("Not done:")


def test_a_function_left_unwritten_is_not_done(capsys):
    def check(update):
        update(1.0)

    def stub(value):
        raise NotImplementedError("write the update")

    assert attempt(check, stub) is False
    assert capsys.readouterr().out == "Not done: write the update, then run the cell again.\n"


def test_a_wrong_answer_says_why_and_a_right_one_passes(capsys):
    assert attempt(check_lr_decay_steps, 20) is False
    assert capsys.readouterr().out.startswith("Not yet: at step 20 the step is still")
    assert attempt(check_lr_decay_steps, 47) is True
    assert capsys.readouterr().out.startswith("Right: step 47")


def test_other_errors_are_not_swallowed():
    def check(answer):
        raise TypeError("a bug in the reader's code shows as a bug")

    with pytest.raises(TypeError):
        attempt(check, 1)
