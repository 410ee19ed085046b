"""runtime: device choice, seeding, model device and the CPU threads a shared machine can take."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from braintools import runtime


def test_get_device():
    assert runtime.get_device("cpu") == torch.device("cpu")
    assert runtime.get_device().type in {"cpu", "cuda", "mps"}


def test_seed_everything_repeats():
    first = runtime.seed_everything(3)
    a = (first.random(), torch.rand(1).item(), np.random.rand())
    second = runtime.seed_everything(3)
    assert (second.random(), torch.rand(1).item(), np.random.rand()) == a


def test_model_device_is_where_the_parameters_are():
    assert runtime.model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert runtime.model_device(nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU


def test_free_cpu_threads_leaves_busy_cores_alone():
    assert runtime.free_cpu_threads(cores=2, load=0.1) == 2
    assert runtime.free_cpu_threads(cores=2, load=1.2) == 1
    assert runtime.free_cpu_threads(cores=2, load=9.0) == 1
    assert runtime.free_cpu_threads(cores=8, load=2.6) == 5
    assert 1 <= runtime.free_cpu_threads() <= (os.cpu_count() or 1)


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux /proc/loadavg")
def test_free_cpu_threads_sees_a_busy_process_at_once():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the 1-minute load average would take a minute to show it
        assert runtime._running_elsewhere() >= 1
        assert runtime.free_cpu_threads(cores=2) == 1
    finally:
        spinner.kill()
        spinner.wait()


def test_free_cpu_threads_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr(runtime, "_running_elsewhere", lambda: None)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert runtime.free_cpu_threads(cores=2) == 1 and runtime.free_cpu_threads(cores=4) == 3
