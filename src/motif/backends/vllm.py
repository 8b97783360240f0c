"""Continuations through the vLLM engine that TRL already runs for round 1.

When TRL generates with vLLM (``use_vllm``), its engine holds the policy's freshly synced
weights, so continuations must go through that same engine rather than a second copy of the
model. vLLM cannot run on CPU machines: this path is covered by tests against a faithful fake of
the two interfaces called here (``LLM.generate`` in colocate mode, ``VLLMClient.generate`` in
server mode), matching vLLM's and TRL 1.16's signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.backends.hf import make_output
from motif.protocol import Chat


def _vllm_sampling_params(**kwargs: Any) -> Any:
    from vllm import SamplingParams as VllmSamplingParams

    return VllmSamplingParams(**kwargs)


class VLLMBackend(GenerationBackend):
    """Generation through TRL's vLLM engine (colocate ``LLM`` or server ``VLLMClient``).

    Args:
        tokenizer: the policy's tokenizer (chat templating happens here, at the boundary).
        eos_ids: token ids that end a reply.
        llm: the colocated ``vllm.LLM`` (colocate mode).
        client: TRL's ``VLLMClient`` (server mode). In server mode generation is a collective:
            every rank must call :meth:`generate` the same number of times.
        accelerator: the trainer's accelerator (server mode gathers prompts on rank 0).
    """

    def __init__(
        self,
        tokenizer: Any,
        eos_ids: Sequence[int],
        llm: Any = None,
        client: Any = None,
        accelerator: Any = None,
        max_batch_size: int = 1024,
    ) -> None:
        super().__init__(max_batch_size)
        if (llm is None) == (client is None):
            raise ValueError("VLLMBackend needs exactly one of llm (colocate) or client (server)")
        self.tokenizer = tokenizer
        self.eos_ids = list(eos_ids)
        self.llm = llm
        self.client = client
        self.accelerator = accelerator

    @classmethod
    def from_trainer(cls, trainer: Any) -> VLLMBackend:
        """The backend over a ``GRPOTrainer``'s vLLM engine (TRL 1.16: ``trainer.vllm_generation``)."""
        from motif.backends.hf import eos_token_ids

        vgen = trainer.vllm_generation
        tokenizer = trainer.processing_class
        eos = eos_token_ids(trainer.model, tokenizer)
        if vgen.mode == "colocate":
            return cls(tokenizer, eos, llm=vgen.llm)
        return cls(tokenizer, eos, client=vgen.vllm_client, accelerator=trainer.accelerator)

    def render(self, chats: Sequence[Chat]) -> list[list[int]]:
        texts = [
            self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
            for chat in chats
        ]
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def _sampling(self, params: SamplingParams, n: int) -> dict[str, Any]:
        return {
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k if params.top_k > 0 else -1,
            "max_tokens": params.max_new_tokens,
            "seed": params.seed,
        }

    def _generate_chunk(
        self, prompts: list, params: SamplingParams, num_samples: int, offset: int
    ) -> list[GenerationOutput]:
        if self.llm is not None:
            completions = self._colocate(prompts, params, num_samples)
        else:
            completions = self._server(prompts, params, num_samples)
        return [
            make_output(
                ids,
                len(prompts[i // num_samples]),
                params.max_new_tokens,
                self.eos_ids,
                self.tokenizer,
            )
            for i, ids in enumerate(completions)
        ]

    def _colocate(self, prompts: list, params: SamplingParams, n: int) -> list[list[int]]:
        sampling = _vllm_sampling_params(**self._sampling(params, n))
        requests = [{"prompt_token_ids": ids} for ids in prompts]
        results = self.llm.generate(requests, sampling_params=sampling, use_tqdm=False)
        return [list(c.token_ids) for r in results for c in r.outputs]

    def _server(self, prompts: list, params: SamplingParams, n: int) -> list[list[int]]:
        from accelerate.utils import broadcast_object_list, gather_object

        everyone = gather_object(prompts)  # a collective: every rank calls it
        payload = None
        if self.accelerator.is_main_process:
            kwargs = self._sampling(params, n)
            kwargs.pop("seed")
            payload = self.client.generate(prompts=everyone, **kwargs)["completion_ids"]
        box = [payload]
        broadcast_object_list(box, from_process=0)
        start = self.accelerator.process_index * len(prompts) * n
        return box[0][start : start + len(prompts) * n]
