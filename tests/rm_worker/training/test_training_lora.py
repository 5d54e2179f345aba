"""LoRA helpers shared by the reward model and the PPO policy: target modules, merged copies."""

import torch
from peft import PeftModel
from torch import nn

from rm_worker.training.lora import lora_target_modules, merged_copy, with_lora_adapters
from tests.tiny_models import tiny_bert, tiny_llama


def test_target_modules_are_the_request_else_peft_defaults_else_q_and_v():
    assert lora_target_modules(tiny_llama(), ["o_proj"]) == ["o_proj"]
    assert sorted(lora_target_modules(tiny_llama())) == ["q_proj", "v_proj"]
    assert sorted(lora_target_modules(tiny_bert())) == ["query", "value"]
    assert lora_target_modules(nn.Linear(2, 2)) == ["q_proj", "v_proj"]  # no config, no model type


def test_merged_copy_folds_the_adapters_in_and_leaves_the_model_wrapped():
    torch.manual_seed(0)
    model = with_lora_adapters(tiny_llama(), r=4, alpha=8, target_modules=["v_proj", "o_proj"])
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()  # B starts at zero: make the adapters change something
    input_ids = torch.tensor([[7, 8, 9, 10]])
    expected = model(input_ids=input_ids).last_hidden_state

    merged = merged_copy(model)

    assert not isinstance(merged, PeftModel) and not any("lora" in name for name, _ in merged.named_parameters())
    assert torch.allclose(merged(input_ids=input_ids).last_hidden_state, expected, atol=1e-5)
    assert isinstance(model, PeftModel) and any("lora_B" in name for name, _ in model.named_parameters())
    with model.disable_adapter():
        assert not torch.allclose(model(input_ids=input_ids).last_hidden_state, expected, atol=1e-3)
    plain = tiny_bert()
    assert merged_copy(plain) is plain
