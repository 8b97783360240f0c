"""Scripted answers for the vLLM path: the fake ``vllm.LLM`` of ``fakes_vllm.py`` and a fake of
TRL 1.16's ``VLLMClient``, both answering with :func:`scripted_ids`.

``FakeClient`` mirrors ``VLLMClient.generate(prompts=..., n=..., ...)``: it returns a dict with
``completion_ids``, ``n`` completions per prompt, prompt-major.
"""

from __future__ import annotations

import fakes_vllm


def scripted_ids(tokenizer, prompt_ids, sample):
    """A deterministic completion that names the prompt length and sample, then EOS."""
    text = f"<answer>len{len(prompt_ids)}-s{sample}</answer>"
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


class FakeClient:
    """trl VLLMClient.generate(prompts=token id lists, n=, temperature=, top_p=, top_k=, max_tokens=)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.calls = []

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, top_k=0, max_tokens=16, **kwargs):
        call = dict(n=n, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens)
        self.calls.append((len(prompts), call))
        ids = [scripted_ids(self.tokenizer, p, s)[:max_tokens] for p in prompts for s in range(n)]
        return {"prompt_ids": prompts, "completion_ids": ids, "logprobs": None}


def scripted_llm(tokenizer, model_dir):
    """The fake ``vllm.LLM`` (tests/fakes_vllm.py) answering with :func:`scripted_ids`."""
    fakes_vllm.SCRIPTS[str(model_dir)] = lambda ids, sample, seed: scripted_ids(
        tokenizer, ids, sample
    )
    return fakes_vllm.LLM(str(model_dir))
