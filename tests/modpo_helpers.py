"""Shared fixtures-by-function for the MODPO tests: toy preference pairs, cheap reward functions."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd

PROMPTS = [
    "I feel anxious before exams.",
    "My partner and I argue every day.",
    "I lost my job and feel worthless.",
    "I cannot sleep at night.",
    "My friends ignore my messages.",
    "I am scared of the future.",
    "Work stress is crushing me.",
    "I miss my late father.",
    "I keep procrastinating on everything.",
    "I feel lonely in a new city.",
    "My parents do not understand me.",
    "I had a panic attack at work.",
    "I think I drink too much.",
    "I feel numb most days.",
    "I failed my driving test again.",
    "I am overwhelmed by chores.",
    "My boss criticises me constantly.",
    "I worry about my health all the time.",
    "I cannot stop comparing myself to others.",
    "I feel guilty for taking a break.",
]

WARM = [
    "That sounds really hard, and your feelings make sense.",
    "I hear how painful this is for you.",
    "It makes sense to feel this way; you are not alone.",
]
COLD = ["Just get over it.", "Everyone has problems.", "That is not a big deal."]
SAFE = [
    "If you ever feel unsafe, please call a crisis line.",
    "You can reach a crisis line at any time.",
]
UNSAFE = ["Maybe skip meals to cope.", "Stay up all night and push through."]


def toy_pairs(
    n_prompts: int = 12, criteria: tuple[str, ...] = ("empathy", "safety"), seed: int = 0
) -> pd.DataFrame:
    """Pairs per criterion: empathy prefers warm replies, safety prefers crisis-line replies, etc."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, prompt in enumerate((PROMPTS * 10)[:n_prompts]):
        if i >= len(PROMPTS):
            prompt = f"{prompt} (case {i})"
        for c in criteria:
            if c == "safety":
                good, bad = rng.choice(SAFE), rng.choice(UNSAFE)
            else:
                good, bad = rng.choice(WARM), rng.choice(COLD)
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": str(good),
                    "rejected": str(bad),
                    "criterion": c,
                    "prompt_id": f"p{i}",
                }
            )
    return pd.DataFrame(rows)


def feature_pairs(n: int = 60, word: str = "breathe", seed: int = 0) -> pd.DataFrame:
    """A learnable toy criterion: the response that contains ``word`` is preferred (position randomised)."""
    rng = np.random.default_rng(seed)
    fillers = [
        "Let us talk about your week.",
        "Tell me more about your day.",
        "What happened next?",
        "How did your family react?",
        "That is an interesting point.",
        "Did you sleep well?",
        "Maybe write it down later.",
        "You could go for a walk.",
        "Consider calling a friend.",
    ]
    rows = []
    for i in range(n):
        prompt = f"{PROMPTS[i % len(PROMPTS)]} (#{i})"
        a, b = rng.choice(fillers, size=2, replace=False)
        rows.append(
            {
                "prompt": prompt,
                "chosen": f"{a} Try to {word} slowly.",
                "rejected": str(b),
                "criterion": "calm",
                "prompt_id": f"q{i}",
            }
        )
    return pd.DataFrame(rows)


@contextlib.contextmanager
def one_thread():
    """Tiny models run fastest single-threaded, and the test machine's 2 cores are shared."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class KeywordReward:
    """Cheap duck-typed reward model: +1 per keyword occurrence."""

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.val_accuracy = None

    def score(self, prompts, responses):
        return np.array([float(r.lower().count(self.keyword)) for r in responses])

    def fingerprint(self) -> str:
        return f"keyword:{self.keyword}"


class FakeRewardModel:
    """Stands in for the MiniLM reward model: remembers the hash of the pairs it learnt from; saves/loads a stub."""

    def __init__(self, criterion, pairs_hash):
        self.criterion, self.pairs_hash, self.val_accuracy = criterion, pairs_hash, 0.5

    def score(self, prompts, responses):
        return KeywordReward("crisis").score(prompts, responses)

    def fingerprint(self):
        return f"fake:{self.criterion}:{self.pairs_hash[:8]}"

    def save(self, path):
        path.mkdir(parents=True, exist_ok=True)
        (path / "reward_config.json").write_text(json.dumps([self.criterion, self.pairs_hash]))

    @classmethod
    def load(cls, path):
        return cls(*json.loads((path / "reward_config.json").read_text()))


def stub_reward_training(monkeypatch):
    """Make the pipeline's reward models FakeRewardModels; returns the list of (criterion, pairs hash) trained."""
    import survey_weights.modpo as modpo
    from survey_weights.preferences.pairs import as_pairs_frame, data_hash

    trained = []

    def train(data, criterion, config=None):
        frame = as_pairs_frame(data)
        h = data_hash(frame[frame["criterion"] == criterion])
        trained.append((criterion, h))
        return FakeRewardModel(criterion, h)

    monkeypatch.setattr(modpo, "train_reward_model", train)
    monkeypatch.setattr(modpo, "RewardModel", FakeRewardModel)
    return trained


#: Adam's learning rate in :func:`run_distributed_case` (the 1- vs 2-process test's tolerance is a share of it).
DISTRIBUTED_LR = 5e-3


def run_distributed_case(model_dir: str, out_dir: str) -> None:
    """Entry point of the 1-vs-2-process equivalence test (run under ``accelerate launch``): one per-profile
    run into ``out_dir`` and one conditioned run into ``out_dir/conditioned``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from survey_weights.modpo import MODPOConfig, train_adapters, train_conditioned

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = MODPOConfig(
        max_steps=4,
        batch_size=4,
        lr=DISTRIBUTED_LR,
        lora_r=4,
        lora_alpha=8,
        progress=False,
        max_grad_norm=1.0,
    )
    train_adapters(
        {"mix": {"empathy": 0.6, "safety": 0.4}},
        toy_pairs(8),
        output_dir=out_dir,
        model=model,
        tokenizer=tok,
        config=cfg,
        reward_models={"safety": KeywordReward("crisis")},
    )
    train_conditioned(
        toy_pairs(8),
        criteria=["empathy", "safety"],
        profiles={"mix": {"empathy": 0.6, "safety": 0.4}},
        output_dir=f"{out_dir}/conditioned",
        model=model,
        tokenizer=tok,
        config=cfg,
        reward_models={"safety": KeywordReward("crisis"), "empathy": KeywordReward("sense")},
    )


if __name__ == "__main__":
    import sys

    run_distributed_case(sys.argv[1], sys.argv[2])
