"""Warm-up + cosine learning-rate schedule."""

import math

import pytest
import torch

from braintools.training import schedules


def test_factor_warms_up_linearly_then_decays_by_cosine():
    factors = [schedules.warmup_cosine_factor(step, 2, 6) for step in range(8)]
    expected = [0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0, 0]
    assert factors == pytest.approx(expected)


def test_factor_floor_and_no_warmup():
    assert schedules.warmup_cosine_factor(0, 0, 10) == 1.0
    assert schedules.warmup_cosine_factor(10, 0, 10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert schedules.warmup_cosine_factor(5, 0, 10, min_lr_ratio=0.1) == pytest.approx(0.55)


@pytest.mark.parametrize("warmup, total", [(-1, 10), (11, 10), (0, 0)])
def test_bad_arguments_fail_when_the_schedule_is_made(warmup, total):
    with pytest.raises(ValueError):
        schedules._warmup_cosine_lambda(warmup, total)


def test_scheduler_sets_the_optimizer_learning_rate():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = schedules.warmup_cosine_scheduler(optimizer, warmup_steps=4, total_steps=8)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert seen[4] == pytest.approx(0.1) and seen[-1] < seen[5] < seen[4]
