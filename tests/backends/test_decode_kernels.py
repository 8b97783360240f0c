"""Machine-dependent decode choices: packed linears, the plan, GQA prefill, logsumexp."""

from __future__ import annotations

import json
import os

import pytest
import torch

import motif.backends.kernels as kernels
from conftest import build_sharp_model
from motif.backends.base import SamplingParams
from motif.backends.fast import _gqa_in_sdpa, _logsumexp
from motif.backends.hf import TransformersBackend
from motif.prompts import round_messages

needs_onednn = pytest.mark.skipif(
    not kernels._onednn_fp32_available(), reason="torch built without oneDNN"
)

CHATS = [round_messages(q, 1, 3) for q in ("Hi", "What is 2 + 2? Think step by step.")] + [
    round_messages("Hi", 2, 3, "four is the answer")
]


def forced(monkeypatch, kernel: str) -> None:
    plan = {"device": "cpu", "fp32_linear_kernel": kernel}
    monkeypatch.setattr(kernels, "decode_plan", lambda device: plan)


def greedy_ids(backend, chats, tokens=12, samples=3):
    """3 prompts x 3 samples: 9 rows, enough for the plan's kernel (MIN_PACKED_ROWS)."""
    assert len(chats) * samples >= kernels.MIN_PACKED_ROWS
    outs = backend.generate(chats, SamplingParams(max_new_tokens=tokens), samples)
    return [o.token_ids for o in outs]


@pytest.mark.parametrize("kernel", ["aten", pytest.param("onednn_packed", marks=needs_onednn)])
def test_each_kernel_keeps_greedy_equal_to_generate(tokenizer, monkeypatch, kernel):
    forced(monkeypatch, kernel)
    model = build_sharp_model(tokenizer)
    ref = TransformersBackend(model, tokenizer, decode="generate", decode_dtype="model")
    fast = TransformersBackend(model, tokenizer, decode="fast", decode_dtype="model")
    assert greedy_ids(fast, CHATS) == greedy_ids(ref, CHATS)


@needs_onednn
def test_peft_policy_with_packed_base_layers(tokenizer, monkeypatch):
    """LoRA stays on top of the packed base layer; merged adapters are packed from live weights."""
    from peft import LoraConfig, get_peft_model

    forced(monkeypatch, "onednn_packed")
    policy = get_peft_model(build_sharp_model(tokenizer, seed=1), LoraConfig(r=4))
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn_like(param))
    ref = TransformersBackend(policy, tokenizer, decode="generate", decode_dtype="model")
    fast = TransformersBackend(policy, tokenizer, decode="fast", decode_dtype="model")
    assert greedy_ids(fast, CHATS, 8) == greedy_ids(ref, CHATS, 8)
    with policy.disable_adapter():
        assert greedy_ids(fast, CHATS, 8) == greedy_ids(ref, CHATS, 8)
    policy.merge_adapter()  # writes into the base weights in place, without a version bump
    try:
        assert greedy_ids(fast, CHATS, 8) == greedy_ids(ref, CHATS, 8)
    finally:
        policy.unmerge_adapter()


@needs_onednn
def test_packed_linears_match_and_are_removed_on_exit(tokenizer):
    from peft import LoraConfig, get_peft_model

    policy = get_peft_model(build_sharp_model(tokenizer), LoraConfig(r=4)).eval()  # as eval_mode
    ids = torch.tensor([[1, 5, 9, 30, 2]])
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:  # a trained adapter (lora_B starts at zero)
                param.add_(torch.randn_like(param))
        want = policy(input_ids=ids).logits
        with kernels.packed_linears(policy, rows=1, kernel="onednn_packed") as count:
            got = policy(input_ids=ids).logits
    # 2 layers x (q k v o gate up down) + lm_head; q and v (PEFT's default targets for Llama)
    # as one product each with the adapter merged in, the rank-4 factors never on their own
    assert count == 2 * 7 + 1
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)
    lora = policy.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad(), kernels.packed_linears(policy, rows=1, kernel="onednn_packed"):
        assert "forward" in lora.__dict__ and "forward" not in lora.base_layer.__dict__
        lora.train()  # dropout would be live: PEFT's own forward over a packed base layer
    with torch.no_grad(), kernels.packed_linears(policy, rows=1, kernel="onednn_packed"):
        assert "forward" not in lora.__dict__ and "forward" in lora.base_layer.__dict__
    lora.eval()
    assert not any("forward" in m.__dict__ for m in policy.modules())
    with torch.no_grad(), kernels.packed_linears(policy, rows=1, kernel="aten") as count:
        assert count == 0
    # the plan's choice applies from MIN_PACKED_ROWS rows; a one-row call stays on aten
    with torch.no_grad(), kernels.packed_linears(policy, rows=1) as count:
        assert count == 0


@needs_onednn
def test_packed_linears_reuse_their_copies_only_through_the_given_dict(tokenizer):
    model = build_sharp_model(tokenizer)
    layer = model.model.layers[0].mlp.up_proj

    def packed(reuse):
        with torch.no_grad(), kernels.packed_linears(model, 8, "onednn_packed", reuse=reuse):
            return layer.forward.args[0]

    reuse: dict = {}
    first = packed(reuse)
    assert packed(reuse) is first  # same dict: the copy is reused
    assert len(reuse) == 2 * 7 + 1
    assert packed(None) is not first and packed(None) is not packed(None)  # else: fresh copies


def test_packed_linears_refuse_an_unknown_kernel_and_grad_inputs(tokenizer):
    model = build_sharp_model(tokenizer)
    with pytest.raises(ValueError, match="kernel must be"), kernels.packed_linears(model, 1, "mkl"):
        pass
    assert not any("forward" in m.__dict__ for m in model.modules())
    if kernels._onednn_fp32_available():
        packed = kernels.packed_linears(model, rows=1, kernel="onednn_packed")
        with packed, pytest.raises(RuntimeError, match="torch.no_grad"):
            model.lm_head(torch.randn(1, 64, requires_grad=True))


def test_decode_plan_is_measured_once_and_recorded(capsys, monkeypatch):
    monkeypatch.setenv("MOTIF_VERBOSE", "1")  # internal: shown only when asked for
    kernels._cpu_plan.cache_clear()
    first = kernels.decode_plan("cpu")
    second = kernels.decode_plan(torch.device("cpu"))
    assert first == second
    assert capsys.readouterr().err.count("motif decode plan:") == 1
    json.dumps(first)  # recordable in run metadata as it is
    assert first["fp32_linear_kernel"] in ("aten", "onednn_packed")
    assert first["fp32_linear_kernel_pinned"] is (kernels.KERNEL_ENV in os.environ)
    assert first["bf16_decode_auto"] == first["amx"]
    assert {"aten_fp32", "aten_bf16"} <= set(first["gemm_gflops"])
    assert first["threads"] == torch.get_num_threads() and first["malloc"]
    assert first["min_packed_rows"] == kernels.MIN_PACKED_ROWS
    assert kernels.decode_plan("meta") == {"device": "meta", "fp32_linear_kernel": "aten"}
    assert "fp32 linear kernel" in kernels.describe(first)


def test_malloc_tuning_leaves_an_explicit_environment_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert kernels.tune_malloc().startswith("unchanged")


@pytest.mark.parametrize("before", [None, "0"])
def test_gqa_prefill_switch_is_scoped(monkeypatch, before):
    name = "TRANSFORMERS_SDPA_FORCE_GQA"
    if before is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, before)
    with _gqa_in_sdpa(torch.device("cpu")):
        assert os.environ[name] == "1"
    assert os.environ.get(name) == before
    with _gqa_in_sdpa(torch.device("meta")):
        assert os.environ.get(name) == before


def test_gqa_attention_equals_repeated_heads():
    """What the prefill switch relies on: enable_gqa gives repeat_kv's values bit for bit."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(4, 6, 5, 16, generator=gen)
    k, v = (torch.randn(4, 2, 12, 16, generator=gen) for _ in range(2))
    mask = torch.ones(4, 1, 5, 12, dtype=torch.bool).tril(7)
    mask[1, :, :, :3] = False  # left padding in one row
    sdpa = torch.nn.functional.scaled_dot_product_attention
    repeated = sdpa(q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=mask)
    assert torch.equal(sdpa(q, k, v, attn_mask=mask, enable_gqa=True), repeated)


@pytest.mark.parametrize(
    "row",
    [
        [0.5, -1.0, 3.0, 2.0],
        [-float("inf"), 1.0, 2.0, -float("inf")],  # masked tokens
        [-float("inf")] * 4,  # nothing allowed: torch's answer (-inf)
        [float("inf"), 1.0, 0.0, 0.0],
        [80.0, 85.0, -90.0, 0.0],  # large magnitudes
    ],
)
def test_logsumexp_matches_torch(row):
    x = torch.tensor([row])
    want = torch.logsumexp(x, dim=-1, keepdim=True)
    assert torch.allclose(_logsumexp(x), want, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("kernel", ["aten", "onednn_packed"])
def test_the_kernel_can_be_pinned_instead_of_measured(monkeypatch, kernel, capsys):
    if kernel == "onednn_packed" and not kernels._onednn_fp32_available():
        pytest.skip("this torch has no packed oneDNN fp32")
    monkeypatch.setenv(kernels.KERNEL_ENV, kernel)
    kernels._cpu_plan.cache_clear()
    try:
        plan = kernels.decode_plan("cpu")
    finally:
        kernels._cpu_plan.cache_clear()
    assert plan["fp32_linear_kernel"] == kernel and plan["fp32_linear_kernel_pinned"]
    assert f"{kernel} (pinned by MOTIF_FP32_KERNEL)" in kernels.describe(plan)


def test_a_bad_pinned_kernel_is_refused(monkeypatch):
    monkeypatch.setenv(kernels.KERNEL_ENV, "mkl")
    with pytest.raises(ValueError, match="MOTIF_FP32_KERNEL must be aten or onednn_packed"):
        kernels._pinned_kernel()


def test_decode_plan_is_not_printed_unless_asked(capsys, monkeypatch):
    for name in ("MOTIF_DEBUG", "MOTIF_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    kernels._cpu_plan.cache_clear()
    kernels.decode_plan("cpu")
    assert "decode plan" not in capsys.readouterr().err
