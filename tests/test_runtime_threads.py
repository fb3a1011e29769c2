"""torch CPU threads: ``"auto"`` decides from what the CPU is doing now, not from the load average."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import torch

from survey_weights.modpo import runtime


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_cpu_busy_elsewhere_sees_another_busy_process():
    pytest.importorskip("os").stat("/proc/stat")  # Linux only
    p = mp.get_context("spawn").Process(target=_spin, args=(3.0,))
    p.start()
    try:
        time.sleep(0.8)  # let it start spinning
        assert runtime.cpu_busy_elsewhere(0.5)
    finally:
        p.join()


def test_auto_threads_follow_the_snapshot(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime, "cpu_busy_elsewhere", lambda *a, **k: True)
        assert runtime.set_torch_threads("auto") == 1 and torch.get_num_threads() == 1
        torch.set_num_threads(before)
        monkeypatch.setattr(runtime, "cpu_busy_elsewhere", lambda *a, **k: False)
        assert runtime.set_torch_threads("auto") is None and torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="int >= 1, 'auto' or None"):
        runtime.set_torch_threads("many")


def test_without_proc_stat_the_load_average_decides(monkeypatch):
    def missing():
        raise OSError("no /proc/stat")

    monkeypatch.setattr(runtime, "_proc_stat", missing)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (2.0, 1.0, 1.0))
    assert runtime.cpu_busy_elsewhere(0.01) is True
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (0.2, 1.0, 1.0))
    assert runtime.cpu_busy_elsewhere(0.01) is False
