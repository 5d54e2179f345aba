"""The PPO policy: a causal LM with LoRA adapters and a value head; the reference is the same model, adapters off.

Only the adapters and the value head train. The reference policy costs no second copy of the weights:
`PolicyWithValueHead.reference` disables the adapters for the forward passes inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, GenerationConfig

from .lora import with_lora_adapters
from .ppo_config import PPOConfig
from .pretrained import load_pretrained

VALUE_HEAD_FILE = "value_head.safetensors"

PolicyFactory = Callable[[PPOConfig], tuple[nn.Module, object]]


def load_policy(config: PPOConfig) -> tuple[nn.Module, object]:
    """(AutoModelForCausalLM, AutoTokenizer) from the local ``config.policy`` folder (a GGUF file in it when set)."""
    return load_pretrained(AutoModelForCausalLM, config.policy, config.policy_gguf_file)


def prepare_tokenizer(tokenizer):
    """Pad with EOS when there is no pad token; pad and truncate on the left (generation continues on the right)."""
    if tokenizer.eos_token is None:
        raise ValueError("the policy's tokenizer has no EOS token: PPO needs one to tell where a response ends")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    return tokenizer


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, as generation counts them for left-padded prompts."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PolicyWithValueHead(nn.Module):
    """A peft LoRA model plus ``value_head = nn.Linear(hidden, 1)`` on the last hidden state.

    Dropout: the base model's stays off in every mode (PPO's probability ratio must compare the same
    function at rollout and update time); ``train()`` switches on only the LoRA dropout.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        lora_r: int = 8,
        lora_alpha: float = 16,
        lora_dropout: float = 0.0,
        target_modules: list[str] | None = None,
    ):
        super().__init__()
        self.model = with_lora_adapters(
            model,
            r=lora_r,
            alpha=lora_alpha,
            target_modules=target_modules,
            dropout=lora_dropout,
            task_type="CAUSAL_LM",
        )
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.value_head = nn.Linear(model.config.hidden_size, 1)
        # Zero init: values start at 0 and the first value-loss gradients set their scale.
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.eval()

    @classmethod
    def from_config(cls, config: PPOConfig, policy_factory: PolicyFactory | None = None) -> PolicyWithValueHead:
        """``policy_factory(config) -> (causal LM, tokenizer)`` replaces loading ``config.policy`` (tests)."""
        model, tokenizer = policy_factory(config) if policy_factory else load_policy(config)
        return cls(
            model,
            tokenizer,
            lora_r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target_modules,
        )

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    def train(self, mode: bool = True) -> PolicyWithValueHead:
        super().train(False)
        if mode:
            for name, module in self.model.named_modules():
                if name.endswith("lora_dropout"):
                    module.train(True)
        self.training = mode
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad] + list(self.value_head.parameters())

    @contextmanager
    def reference(self) -> Iterator[None]:
        """Inside: the model is the reference policy (adapters disabled)."""
        with self.model.disable_adapter():
            yield

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_start: int, hidden: bool):
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_for(attention_mask),
            output_hidden_states=hidden,
            use_cache=False,
            # Logits only where response tokens are predicted: over a long prompt, the vocabulary projection
            # would otherwise cost more than the rest of the model.
            logits_to_keep=input_ids.shape[1] - response_start + 1,
        )

    def response_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_start: int,
        temperature: float = 1.0,
        *,
        with_values: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logprobs [B, T], values [B, T] or None)`` of the tokens from ``response_start`` on.

        ``logprobs[:, t]`` is log π(token t | everything before), at the sampling temperature; ``values[:, t]``
        is the value of the state just before token t.
        """
        outputs = self._forward(input_ids, attention_mask, response_start, hidden=with_values)
        logits = outputs.logits[:, :-1].float() / temperature
        tokens = input_ids[:, response_start:]
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        if not with_values:
            return logprobs, None
        hidden = outputs.hidden_states[-1][:, response_start - 1 : -1]
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)
        return logprobs, values

    @torch.no_grad()
    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, generation_config: GenerationConfig
    ) -> torch.Tensor:
        """[B, P] left-padded prompts -> [B, T] response tokens (padded with ``pad_token_id`` after they end)."""
        output = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config
        )
        return output[:, input_ids.shape[1] :]

    def trainable_state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        """The adapters and the value head: everything training changes."""
        return {"adapter": get_peft_model_state_dict(self.model), "value_head": self.value_head.state_dict()}

    def load_trainable_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        result = set_peft_model_state_dict(self.model, state["adapter"])
        if result.unexpected_keys:
            raise ValueError(f"adapter weights do not match the policy (unexpected {result.unexpected_keys})")
        self.value_head.load_state_dict(state["value_head"])

    def save_pretrained(self, directory: str | Path) -> Path:
        """The adapters (peft ``save_pretrained``: ``PeftModel.from_pretrained(base, directory)`` reloads them)
        and ``value_head.safetensors``."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()},
            directory / VALUE_HEAD_FILE,
        )
        return directory
