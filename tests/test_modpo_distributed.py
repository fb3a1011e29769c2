"""Two CPU processes (torchrun + gloo, read by accelerate.Accelerator) give the same adapter as 1 process, for a
per-profile run and for a conditioned run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from modpo_helpers import one_thread, run_distributed_case
from safetensors.torch import load_file

from survey_weights.modpo import make_tiny_llama

HELPERS = Path(__file__).with_name("modpo_helpers.py")
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    model, tok = make_tiny_llama()
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    with one_thread():
        run_distributed_case(str(tmp_path / "model"), str(tmp_path / "one"))
    # `accelerate launch --cpu` needs mpirun for >1 process; torchrun is the gloo launcher that Accelerator
    # picks up on CPU (on GPUs: `accelerate launch --multi_gpu --num_processes N`), same script either way.
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(HELPERS),
        str(tmp_path / "model"),
        str(tmp_path / "two"),
    ]
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join(
            [str(REPO), str(HELPERS.parent), os.environ.get("PYTHONPATH", "")]
        ),
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = load_file(tmp_path / "one" / "mix" / "adapter_model.safetensors")
    two = load_file(tmp_path / "two" / "mix" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=2e-5, rtol=1e-4), k
    meta1 = json.loads((tmp_path / "one" / "mix" / "profile.json").read_text())
    meta2 = json.loads((tmp_path / "two" / "mix" / "profile.json").read_text())
    assert meta2["num_processes"] == 2 and meta1["num_processes"] == 1
    assert meta1["losses"] == pytest.approx(meta2["losses"], abs=1e-5)
    assert meta1["resume_key"] == meta2["resume_key"]
    for comp in ("shared", "crit0", "crit1"):  # the conditioned run: same components, losses and draws
        one = load_file(tmp_path / "one" / "conditioned" / "components" / comp / "adapter_model.safetensors")
        two = load_file(tmp_path / "two" / "conditioned" / "components" / comp / "adapter_model.safetensors")
        assert one.keys() == two.keys()
        for k in one:
            assert torch.allclose(one[k], two[k], atol=2e-5, rtol=1e-4), (comp, k)
    man1 = json.loads((tmp_path / "one" / "conditioned" / "conditioned.json").read_text())
    man2 = json.loads((tmp_path / "two" / "conditioned" / "conditioned.json").read_text())
    assert man1["num_processes"] == 1 and man2["num_processes"] == 2 and man1["draws"] == man2["draws"]
    assert man1["losses"] == pytest.approx(man2["losses"], abs=1e-5)
    assert man1["resume_key"] == man2["resume_key"]


def _free_port() -> int:
    """A free local TCP port (a fixed one collides when two test runs share the machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
