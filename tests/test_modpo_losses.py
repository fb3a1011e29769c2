"""Loss functions: hand-computed values, DPO special case, no gradient to margins, validation."""

from __future__ import annotations

import math

import pytest
import torch

from survey_weights.modpo import dpo_loss, joint_dpo_loss, modpo_loss


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


PC = torch.tensor([-10.0, -20.0])
PR = torch.tensor([-12.0, -18.0])
RC = torch.tensor([-11.0, -19.0])
RR = torch.tensor([-11.5, -19.5])


def test_dpo_hand_computed():
    losses, cr, rr = dpo_loss(PC, PR, RC, RR, beta=0.1)
    # row 0: 0.1*((-10+11) - (-12+11.5)) = 0.15 ; row 1: 0.1*((-20+19) - (-18+19.5)) = -0.25
    expected = [-math.log(_sig(0.15)), -math.log(_sig(-0.25))]
    assert losses.shape == (2,)
    assert torch.allclose(losses, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(cr, torch.tensor([0.1, -0.1]), atol=1e-6)
    assert torch.allclose(rr, torch.tensor([-0.05, 0.15]), atol=1e-6)


def test_modpo_hand_computed():
    mc = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    mr = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    w = (0.5, 0.3, 0.2)
    losses, cr, rr = modpo_loss(PC, PR, RC, RR, mc, mr, weights=w, beta=0.1)
    # row 0: (0.15 - (0.3*0.5 + 0.2*1.0)) / 0.5 = (0.15 - 0.35)/0.5 = -0.4
    # row 1: (-0.25 - (0.3*-1 + 0.2*1)) / 0.5 = (-0.25 + 0.1)/0.5 = -0.3
    expected = torch.tensor([-math.log(_sig(-0.4)), -math.log(_sig(-0.3))])
    assert torch.allclose(losses, expected, atol=1e-6)
    # chosen reward row 0: (0.1*1 - (0.3*1 + 0.2*2)) / 0.5 = -1.2
    assert cr[0].item() == pytest.approx(-1.2, abs=1e-6)
    assert rr[0].item() == pytest.approx((0.1 * -0.5 - (0.3 * 0.5 + 0.2 * 1.0)) / 0.5, abs=1e-6)


def test_modpo_with_unit_weight_is_exactly_dpo():
    d = dpo_loss(PC, PR, RC, RR, beta=0.3)
    m1 = modpo_loss(PC, PR, RC, RR, None, None, weights=(1.0,), beta=0.3)
    margins = torch.randn(2, 3)
    m0 = modpo_loss(PC, PR, RC, RR, margins, -margins, weights=(1.0, 0.0, 0.0, 0.0), beta=0.3)
    for a, b in zip(d, m1):
        assert torch.equal(a, b)
    for a, b in zip(d, m0):
        assert torch.allclose(a, b, atol=0, rtol=0)


def test_zero_margin_equals_dpo_with_scaled_beta():
    z = torch.zeros(2, 1)
    m, _, _ = modpo_loss(PC, PR, RC, RR, z, z, weights=(0.5, 0.5), beta=0.1)
    d, _, _ = dpo_loss(PC, PR, RC, RR, beta=0.2)
    assert torch.allclose(m, d, atol=1e-6)


def test_no_gradient_reaches_margins_or_reference():
    pc = PC.clone().requires_grad_(True)
    pr = PR.clone().requires_grad_(True)
    rc = RC.clone().requires_grad_(True)
    mc = torch.tensor([[1.0], [2.0]], requires_grad=True)
    mr = torch.tensor([[0.0], [1.0]], requires_grad=True)
    losses, cr, rr = modpo_loss(pc, pr, rc, RR, mc, mr, weights=(0.6, 0.4), beta=0.1)
    g = torch.autograd.grad(losses.sum(), [pc, pr, rc, mc, mr], allow_unused=True)
    assert g[0] is not None and g[1] is not None
    assert g[2] is None and g[3] is None and g[4] is None
    assert not cr.requires_grad and not rr.requires_grad


def test_joint_dpo_hand_computed_and_single_objective():
    pc = torch.stack([PC, PC - 1], 1)
    pr = torch.stack([PR, PR], 1)
    rc = torch.stack([RC, RC], 1)
    rr = torch.stack([RR, RR], 1)
    losses, _, _ = joint_dpo_loss(pc, pr, rc, rr, weights=(0.7, 0.3), beta=0.1)
    # row 0: 0.1*(0.7*1.5 + 0.3*0.5) = 0.12
    assert losses[0].item() == pytest.approx(-math.log(_sig(0.12)), abs=1e-6)
    one, _, _ = joint_dpo_loss(
        PC[:, None], PR[:, None], RC[:, None], RR[:, None], weights=(1.0,), beta=0.1
    )
    assert torch.allclose(one, dpo_loss(PC, PR, RC, RR, beta=0.1)[0], atol=1e-7)


@pytest.mark.parametrize("weights", [(0.0, 1.0), (-0.5, 1.0), (float("nan"), 1.0)])
def test_main_weight_must_be_positive(weights):
    m = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="weights"):
        modpo_loss(PC, PR, RC, RR, m, m, weights=weights, beta=0.1)


def test_shape_and_argument_errors():
    with pytest.raises(ValueError, match="ref_chosen_logps"):
        dpo_loss(PC, PR, RC[:1], RR, beta=0.1)
    with pytest.raises(ValueError, match="margin_chosen"):
        modpo_loss(
            PC, PR, RC, RR, torch.zeros(2, 2), torch.zeros(2, 2), weights=(0.5, 0.5), beta=0.1
        )
    with pytest.raises(ValueError, match="margin_chosen"):
        modpo_loss(PC, PR, RC, RR, None, None, weights=(0.5, 0.5), beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(PC, PR, RC, RR, beta=0.0)
    with pytest.raises(ValueError, match=r"weights\[1:\]"):
        modpo_loss(
            PC, PR, RC, RR, torch.zeros(2, 1), torch.zeros(2, 1), weights=(0.5, -0.1), beta=0.1
        )
    with pytest.raises(TypeError, match="policy_rejected_logps"):
        dpo_loss(PC, [1.0, 2.0], RC, RR, beta=0.1)
