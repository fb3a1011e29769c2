"""Pure preference-optimisation losses: DPO, MODPO and joint-loss DPO.

All functions take *summed* response log-probabilities (one scalar per sequence) and return
``(losses, chosen_rewards, rejected_rewards)`` with ``losses`` of shape ``(batch,)``; reduce with ``.mean()``.

:func:`dpo_loss` and :func:`modpo_loss` take an optional soft ``label`` p = P(chosen preferred): the loss is then
the cross-entropy of σ(z) against p, ``-[p log σ(z) + (1 - p) log σ(-z)]``, whose minimum over z is at
``σ(z) = p`` (finite) instead of z → ∞. ``label = 1 - ε`` for hard labels is conservative DPO / label smoothing
[Mit23]_; with Bradley–Terry-distributed labels MODPO's optimum satisfies β·Δlogratio = Σ_i w_i r_i [ZLY23]_.

References
----------
.. [RSM23] Rafailov et al. (2023). Direct Preference Optimization. arXiv:2305.18290.
.. [ZLY23] Zhou et al. (2023). Beyond One-Preference-Fits-All Alignment: Multi-Objective Direct
   Preference Optimization. arXiv:2310.03708.
.. [Mit23] Mitchell (2023). A note on DPO with noisy preferences and relationship to IPO (conservative DPO).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["dpo_loss", "modpo_loss", "joint_dpo_loss"]

Tensor = torch.Tensor


def _check_beta(beta: float) -> None:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"`beta` must be a float > 0. Got {beta!r} instead.")


def _check_logps(
    names: Sequence[str], tensors: Sequence[Tensor], shape: tuple[int, ...] | None = None
) -> None:
    ref_shape = tuple(tensors[0].shape) if shape is None else shape
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor. Got {type(t).__name__} instead.")
        if tuple(t.shape) != ref_shape:
            raise ValueError(
                f"`{name}` must have shape {ref_shape} (like `{names[0]}`). Got {tuple(t.shape)} instead."
            )


def _soft_bce(logits: Tensor, label: Tensor | float | None, batch: int) -> Tensor:
    r"""``-log σ(z)`` (``label`` None), else ``-[p log σ(z) + (1 - p) log σ(-z)]``, shape (batch,)."""
    if label is None:
        return -F.logsigmoid(logits)
    if isinstance(label, bool) or not isinstance(label, (int, float, torch.Tensor)):
        raise TypeError(
            f"`label` must be a float or a Tensor of shape (batch,) with values in [0, 1]. Got {type(label).__name__}."
        )
    p = torch.as_tensor(label, dtype=logits.dtype, device=logits.device).detach()
    if p.ndim == 0:
        p = p.expand(batch)
    if tuple(p.shape) != (batch,):
        raise ValueError(f"`label` must have shape ({batch},) (like the log-probs). Got {tuple(p.shape)} instead.")
    if not torch.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError(
            f"`label` must hold probabilities in [0, 1] (P(chosen preferred)). Got min {p.min().item()!r}, max "
            f"{p.max().item()!r}. Fix: pass soft labels in [0, 1] (1 - ε for label smoothing)."
        )
    return -(p * F.logsigmoid(logits) + (1.0 - p) * F.logsigmoid(-logits))


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float,
    label: Tensor | float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Direct Preference Optimization loss [RSM23]_, with optional soft labels.

    .. math::
        r_c = \beta(\log\pi_\theta(y_w|x) - \log\pi_{ref}(y_w|x)),\quad
        r_r = \beta(\log\pi_\theta(y_l|x) - \log\pi_{ref}(y_l|x)),\quad
        L = -\log\sigma(r_c - r_r)

    and with a label ``p``: :math:`L = -[p\log\sigma(r_c - r_r) + (1 - p)\log\sigma(r_r - r_c)]`.

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : Tensor, shape (batch,)
        Summed response log-probs under the trained policy.
    ref_chosen_logps, ref_rejected_logps : Tensor, shape (batch,)
        The same under the reference policy (no gradient is taken through them).
    beta : float
        KL strength β > 0.
    label : float or Tensor, shape (batch,), optional
        Soft label p = P(chosen preferred) in [0, 1] per pair (or one for all); None (default) is the hard-label
        loss ``-log σ(r_c - r_r)``, unchanged. No gradient is taken through it.

    Returns
    -------
    losses : Tensor, shape (batch,)
    chosen_rewards, rejected_rewards : Tensor, shape (batch,)
        Detached implicit rewards ``r_c`` and ``r_r``.
    """
    return modpo_loss(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        None,
        None,
        weights=(1.0,),
        beta=beta,
        label=label,
    )


def modpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    margin_chosen: Tensor | None,
    margin_rejected: Tensor | None,
    *,
    weights: Sequence[float] | Tensor,
    beta: float,
    label: Tensor | float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Multi-objective DPO loss of Zhou et al. [ZLY23]_ for the objective ``k`` whose pairs are trained on.

    .. math::
        z = \frac{1}{w_k}\Big[\beta\log\frac{\pi_\theta(y_w|x)}{\pi_{ref}(y_w|x)}
            - \beta\log\frac{\pi_\theta(y_l|x)}{\pi_{ref}(y_l|x)}
            - w_{-k}^\top\big(r_{-k}(x,y_w) - r_{-k}(x,y_l)\big)\Big],\qquad L = -\log\sigma(z)

    and with a soft label ``p`` = P(y_w preferred on objective k): :math:`L = -[p\log\sigma(z) + (1-p)\log\sigma(-z)]`,
    minimised at :math:`\sigma(z) = p`, i.e. :math:`\beta\,\Delta\log\text{ratio} = w_k\,\mathrm{logit}(p)
    + w_{-k}^\top\Delta r_{-k}`, MODPO's weighted-reward optimum when ``logit(p)`` is objective k's reward gap.

    With ``weights=(1,)`` (or ``(1, 0, ..., 0)``) this is exactly :func:`dpo_loss`.

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : Tensor, shape (batch,)
        Summed response log-probs under the trained policy.
    ref_chosen_logps, ref_rejected_logps : Tensor, shape (batch,)
        Summed response log-probs under the reference policy.
    margin_chosen, margin_rejected : Tensor, shape (batch, K-1), or None
        Rewards ``r_{-k}(x, y_w)`` and ``r_{-k}(x, y_l)`` of the other K-1 objectives. They are detached:
        no gradient ever reaches them. ``None`` is allowed only when ``K == 1``.
    weights : sequence of float or Tensor, shape (K,)
        ``(w_k, w_{-k})``: the trained objective's weight first (must be > 0), then the margin weights
        (must be >= 0), in the column order of the margins.
    beta : float
        KL strength β > 0.
    label : float or Tensor, shape (batch,), optional
        Soft label p = P(chosen preferred) in [0, 1]; None (default) keeps the hard-label loss unchanged.

    Returns
    -------
    losses : Tensor, shape (batch,)
    chosen_rewards, rejected_rewards : Tensor, shape (batch,)
        Detached ``(β·logratio − w_{−k}ᵀ r_{−k}) / w_k`` for the chosen and rejected responses.

    Raises
    ------
    ValueError
        On mismatched shapes, ``w_k <= 0``, negative or non-finite margin weights, ``beta <= 0``, or a ``label``
        outside [0, 1].
    TypeError
        A ``label`` that is neither a float nor a Tensor.
    """
    _check_beta(beta)
    names = (
        "policy_chosen_logps",
        "policy_rejected_logps",
        "ref_chosen_logps",
        "ref_rejected_logps",
    )
    tensors = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    _check_logps(names, tensors)
    if policy_chosen_logps.ndim != 1:
        raise ValueError(
            f"`policy_chosen_logps` must have shape (batch,). Got {tuple(policy_chosen_logps.shape)} instead."
        )
    device, dtype = policy_chosen_logps.device, policy_chosen_logps.dtype
    w = torch.as_tensor(weights, dtype=dtype, device=device).detach()
    if w.ndim != 1 or w.numel() < 1:
        raise ValueError(
            f"`weights` must be a 1-d sequence (w_k, w_-k...) of length K >= 1. Got {weights!r}."
        )
    if not torch.isfinite(w).all():
        raise ValueError(f"`weights` must be finite. Got {w.tolist()} instead.")
    if not w[0] > 0:
        raise ValueError(
            f"`weights[0]` (the weight of the trained objective, w_k) must be > 0. Got {w[0].item()!r}. "
            "Fix: choose a main objective with positive weight."
        )
    if (w[1:] < 0).any():
        raise ValueError(
            f"Margin weights `weights[1:]` must be >= 0. Got {w[1:].tolist()} instead."
        )
    batch = policy_chosen_logps.shape[0]
    k_minus = w.numel() - 1
    if k_minus == 0:
        if margin_chosen is not None and margin_chosen.numel() > 0:
            raise ValueError(
                "`margin_chosen` was given but `weights` has length 1; pass weights of length K."
            )
        margin = torch.zeros(batch, dtype=dtype, device=device)
    else:
        if margin_chosen is None or margin_rejected is None:
            raise ValueError(
                f"`weights` has length {k_minus + 1}, so `margin_chosen` and `margin_rejected` of shape "
                f"(batch, {k_minus}) are required."
            )
        _check_logps(
            ("margin_chosen", "margin_rejected"), (margin_chosen, margin_rejected), (batch, k_minus)
        )
        diff = (margin_chosen.detach() - margin_rejected.detach()).to(dtype)
        margin = diff @ w[1:]
    chosen_logratio = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratio = policy_rejected_logps - ref_rejected_logps.detach()
    logits = (beta * (chosen_logratio - rejected_logratio) - margin) / w[0]
    losses = _soft_bce(logits, label, batch)
    if k_minus:
        mc = margin_chosen.detach().to(dtype) @ w[1:]
        mr = margin_rejected.detach().to(dtype) @ w[1:]
    else:
        mc = mr = torch.zeros_like(chosen_logratio)
    chosen_rewards = ((beta * chosen_logratio - mc) / w[0]).detach()
    rejected_rewards = ((beta * rejected_logratio - mr) / w[0]).detach()
    return losses, chosen_rewards, rejected_rewards


def joint_dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    weights: Sequence[float] | Tensor,
    beta: float,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Joint-loss DPO baseline of the psychotherapy study: one logit summing the weighted objectives.

    .. math::
        L = -\log\sigma\Big(\sum_k \beta\, w_k\, \Delta_k\Big),\quad
        \Delta_k = \log\frac{\pi_\theta(y^k_w|x)}{\pi_{ref}(y^k_w|x)} - \log\frac{\pi_\theta(y^k_l|x)}{\pi_{ref}(y^k_l|x)}

    where ``(y^k_w, y^k_l)`` is objective ``k``'s pair for the same prompt ``x``.

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps : Tensor, shape (batch, K)
        Summed response log-probs; column ``k`` holds objective ``k``'s pair for the row's prompt.
    weights : sequence of float or Tensor, shape (K,)
        Non-negative objective weights, at least one positive.
    beta : float
        KL strength β > 0.

    Returns
    -------
    losses : Tensor, shape (batch,)
    chosen_rewards, rejected_rewards : Tensor, shape (batch,)
        Detached weighted implicit rewards ``Σ_k β w_k logratio_k``.
    """
    _check_beta(beta)
    names = (
        "policy_chosen_logps",
        "policy_rejected_logps",
        "ref_chosen_logps",
        "ref_rejected_logps",
    )
    tensors = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    _check_logps(names, tensors)
    if policy_chosen_logps.ndim != 2:
        raise ValueError(
            f"Log-probs must have shape (batch, K). Got {tuple(policy_chosen_logps.shape)} instead."
        )
    w = torch.as_tensor(weights, dtype=policy_chosen_logps.dtype, device=policy_chosen_logps.device)
    if w.shape != (policy_chosen_logps.shape[1],):
        raise ValueError(
            f"`weights` must have shape ({policy_chosen_logps.shape[1]},). Got {tuple(w.shape)}."
        )
    if not torch.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise ValueError(
            f"`weights` must be finite, >= 0 and not all zero. Got {w.tolist()} instead."
        )
    chosen = beta * (policy_chosen_logps - ref_chosen_logps.detach()) @ w
    rejected = beta * (policy_rejected_logps - ref_rejected_logps.detach()) @ w
    losses = -F.logsigmoid(chosen - rejected)
    return losses, chosen.detach(), rejected.detach()
