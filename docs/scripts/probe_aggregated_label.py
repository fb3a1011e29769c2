"""Probe (not part of the package): the main job's conditioned run with the loss replaced by the cross-entropy of
σ(β·Δlogratio) against the profile's aggregated label σ(w_k·logit p_k + Σ_c w_c·m_c), where m_c are the pairs' own
label margins: the optimum of MODPO with label margins, without its 1/w_k factor. Takes the arguments of
``demo_schedule.py``; the row "aggregated label" of ``docs/design.md`` ("The main job's schedule") came from::

    .venv/bin/python docs/scripts/probe_aggregated_label.py --steps 3 --batch 8 --pool 40

Synthetic data throughout: nothing here is the study's.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import survey_weights.modpo._conditioned_loop as conditioned_loop
from survey_weights.modpo.logps import collate, sequence_logps


def aggregated_label_loss(pmodel, shared, local, spec, w_t, objective, beta, device):  # noqa: ANN001, ANN201
    """Per-pair losses, shape (lb,), with the signature of ``modpo._loop._batch_loss``."""
    n, flat = shared.n, local.reshape(-1)
    ids, mask, labels = collate(shared.enc, list(flat) + list(flat + n), pad_id=shared.pad_id, device=device)
    logps = sequence_logps(pmodel, ids, mask, labels)
    k = len(flat)
    rc, rr = shared.ref[flat].to(device), shared.ref[flat + n].to(device)
    p = shared.labels[flat].to(device).double().clamp(1e-6, 1 - 1e-6)
    target = w_t[0].double() * (torch.log(p) - torch.log1p(-p))
    cols = [shared.margins[c] for c in spec.criteria[1:]]
    if cols:
        m = torch.stack([tab[flat, 0] - tab[flat, 1] for tab in cols], 1).to(device)
        target = target + m @ w_t[1:].double()
    z = beta * ((logps[:k] - rc) - (logps[k:] - rr))
    q = torch.sigmoid(target).float()
    return -(q * F.logsigmoid(z) + (1 - q) * F.logsigmoid(-z))


if __name__ == "__main__":
    conditioned_loop._batch_loss = aggregated_label_loss
    sys.argv = ["demo_schedule.py", *sys.argv[1:]]
    runpy.run_path(str(Path(__file__).with_name("demo_schedule.py")), run_name="__main__")
