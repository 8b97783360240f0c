"""Chat templates read from the template itself (real tokenizer, hand-written Jinja templates):
a template that refuses the system role gets it folded into the first user turn, one that
opens no assistant turn is refused for every carry-over, before any weights load."""

from __future__ import annotations

import copy

import pytest

from motif.backends.base import SamplingParams
from motif.backends.template import check_continuation, folds_system, render_chat
from motif.carryover import TailWindow
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError
from motif.prompts import fold_system, round_messages
from motif.protocol import Protocol

# Gemma 2's template, shortened: no system role, strict user/model alternation.
GEMMA = (
    "{# TAG #}{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
# Opens no assistant turn whatever add_generation_prompt says.
NO_GENERATION_PROMPT = (
    "{# TAG #}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}"
)
# No role headers at all: the model writes right after the prompt (accepted).
PLAIN = "{# TAG #}{% for m in messages %}{{ m.content }}\n\n{% endfor %}"


def with_template(tokenizer, template: str, tag: str):
    """A copy of the tokenizer with ``template`` (``tag`` keeps each test's template apart
    from the per-template cache)."""
    other = copy.deepcopy(tokenizer)
    other.chat_template = template.replace("TAG", tag)
    return other


def test_a_template_refusing_the_system_role_gets_it_folded_with_one_note(tokenizer, capsys):
    gemma = with_template(tokenizer, GEMMA, "fold-note")
    chat = round_messages("What is 2 + 3?", 2, 3, "five")
    with pytest.raises(Exception, match="System role not supported"):
        gemma.apply_chat_template(chat, tokenize=False)
    text = render_chat(gemma, chat, add_generation_prompt=True)
    folded = fold_system(chat)
    assert text == gemma.apply_chat_template(folded, tokenize=False, add_generation_prompt=True)
    assert folded[0]["content"] == chat[0]["content"] + "\n\n" + chat[1]["content"]
    assert text.count("<start_of_turn>") == 2 and "Progress in round 1" in text
    render_chat(gemma, chat)  # decided once per template: one note
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"note: the chat template of {gemma.name_or_path} refuses a system message; the "
        "system prompt is folded into the first user turn"
    ]
    assert folds_system(tokenizer) is False  # the default template takes a system message


def test_a_folded_template_continues_a_turn_and_runs_every_carry_over(tokenizer):
    from conftest import build_sharp_model
    from motif.backends.hf import TransformersBackend
    from motif.engine import RolloutEngine

    gemma = with_template(tokenizer, GEMMA, "fold-engine")
    check_continuation(gemma)
    backend = TransformersBackend(build_sharp_model(tokenizer, seed=3), gemma, decode_dtype="model")
    window = TailWindow(chunk=12, head=2, tail=4, max_chunks=2)
    for protocol in (
        Protocol(rounds=2),
        Protocol(rounds=2, carry_over="tail", window=window),
        Protocol(rounds=1, carry_over="none"),
    ):
        engine = RolloutEngine(backend, protocol, SamplingParams(max_new_tokens=12))
        traj = engine.run(["What is 2 + 3?"])[0]
        chat = protocol.messages("What is 2 + 3?", 1)
        prompt = gemma(render_chat(gemma, chat, add_generation_prompt=True))["input_ids"]
        assert traj.rounds[0].prompt_tokens == len(prompt)  # the folded chat was sent
        assert len(traj.rounds) == protocol.rounds


def test_demonstrations_render_the_folded_chat(tokenizer):
    from motif.training.demos import conversation_ids

    gemma = with_template(tokenizer, GEMMA, "fold-demos")
    chat = round_messages("What is 2 + 3?", 1, 2)
    row = {"prompt": chat, "completion": [{"role": "assistant", "content": "<answer>5</answer>"}]}
    ids = conversation_ids(gemma, row)
    text = gemma.decode(ids["input_ids"])
    assert "System role" not in text and chat[0]["content"].strip() in text
    reply = [i for i, m in zip(ids["input_ids"], ids["completion_mask"], strict=True) if m]
    assert gemma.decode(reply) == "<answer>5</answer><end_of_turn>\n"


def test_a_template_without_a_generation_prompt_is_refused(tokenizer):
    broken = with_template(tokenizer, NO_GENERATION_PROMPT, "refuse")
    with pytest.raises(ConfigError) as error:
        render_chat(broken, round_messages("Q?", 1, 3), add_generation_prompt=True)
    message = str(error.value)
    assert message.startswith(f"the chat template of {broken.name_or_path} ignores ")
    assert "'<|im_start|>assistant'" in message and "\n" not in message
    folds_system(with_template(tokenizer, PLAIN, "plain"))  # no headers at all: accepted


@pytest.fixture
def checkpoint_with(tmp_path, tokenizer, tiny_model):
    """A checkpoint directory with a config and a given template, but no weights."""

    def make(template: str, tag: str):
        path = tmp_path / tag
        tiny_model.config.save_pretrained(path)
        with_template(tokenizer, template, tag).save_pretrained(path)
        return path

    return make


@pytest.mark.parametrize(
    "proto",
    [
        ProtocolArgs(),
        ProtocolArgs(carry_over="tail", tail_chunk=64, tail_head=8),
        ProtocolArgs(carry_over="none"),
    ],
)
def test_templates_are_checked_before_weights_load(checkpoint_with, proto, no_model_load, capsys):
    from motif.runtime import check_protocol_fits

    gen = GenerationArgs(max_new_tokens=64, later_max_new_tokens=64)
    path = checkpoint_with(NO_GENERATION_PROMPT, f"ckpt-refuse-{proto.carry_over}")
    with pytest.raises(ConfigError, match="ignores add_generation_prompt"):
        check_protocol_fits(ModelArgs(model=str(path)), gen, proto)
    path = checkpoint_with(GEMMA, f"ckpt-fold-{proto.carry_over}")
    check_protocol_fits(ModelArgs(model=str(path)), gen, proto)
    assert "system prompt is folded" in capsys.readouterr().err


def test_the_cli_refuses_such_a_template_in_one_line(checkpoint_with, no_model_load, capsys):
    from motif.cli.main import main

    path = checkpoint_with(NO_GENERATION_PROMPT, "ckpt-cli")
    assert main(["infer", "Q?", "--model", str(path), "--rounds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("motif: error: the chat template of ")
    assert "ignores add_generation_prompt" in err[0]


def test_training_prompts_trl_renders_are_folded_too(checkpoint_with, no_model_load, capsys):
    from motif.cli.train import parse_config
    from motif.prompts import system_prompt
    from motif.training.trainer import build_dataset

    flags = ["--dataset", "reasoning_gym:chain_sum", "--dataset-size", "2", "--report-to", "none"]
    path = checkpoint_with(GEMMA, "ckpt-train-fold")
    prompt = build_dataset(parse_config([*flags, "--model", str(path)]))[0]["prompt"]
    assert [m["role"] for m in prompt] == ["user"]
    assert prompt[0]["content"].startswith(system_prompt(3) + "\n\n")
    plain = build_dataset(parse_config(flags))[0]["prompt"]
    assert [m["role"] for m in plain] == ["system", "user"]


def test_credit_states_are_folded_when_the_template_needs_it():
    from motif.engine import RoundRecord
    from motif.protocol import Protocol
    from motif.training.credit import ROUND_KEY, Credit, State

    credit = Credit(Protocol(rounds=2), num_generations=2, first_share=0.5, buffer_size=4)
    credit.fold_system = True
    record = RoundRecord(1, "Q?", "<answer>S</answer>", None, "S", "S", 3, 3, False)
    credit.buffer.add([State("Q?", "1", [record])])
    rows = [{"prompt": [{"role": "user", "content": "Q?"}], "question": "Q?", "answer": "1"}] * 4
    mixed = credit.mix(rows, generation=0)
    later = [r for r in mixed if r[ROUND_KEY] == 2]
    assert later and all([m["role"] for m in r["prompt"]] == ["user"] for r in later)


def test_cold_start_rows_trl_renders_are_folded(tokenizer):
    from motif.cli.common import parse
    from motif.config import ModelArgs
    from motif.training.config import LoraArgs
    from motif.training.sft_config import SftArgs, SftConfig
    from motif.training.sft_rows import build_blocks

    types = (SftArgs, ModelArgs, ProtocolArgs, LoraArgs)
    config = SftConfig(
        *parse("motif sft", types, ["--num-examples", "2", "--rounds", "2", "--output-dir", "x"])
    )
    gemma = with_template(tokenizer, GEMMA, "fold-sft")
    [(_, rows)] = build_blocks(config, gemma)
    assert all([m["role"] for m in r["prompt"]] == ["user"] for r in rows)
    [(_, plain)] = build_blocks(config, tokenizer)
    assert all(r["prompt"][0]["role"] == "system" for r in plain)
