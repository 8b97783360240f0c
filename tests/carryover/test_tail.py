"""Carry-over strategies end to end: tail chunk bookkeeping (scripted fake), continuing an
assistant turn token for token (tiny model), template and budget checks before loading."""

from __future__ import annotations

import copy

import pytest

from eval_fakes import args, loader_for, rows_of, sum_of
from fakes import ScriptedBackend
from motif.backends.base import GenerationBackend, SamplingParams
from motif.backends.template import check_continuation
from motif.carryover import TailWindow
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.engine import RolloutEngine
from motif.errors import ConfigError
from motif.prompts import VANILLA_SYSTEM_PROMPT, round_messages
from motif.protocol import Protocol
from scripted_vllm import scripted_llm

THOUGHT = [f"w{i}" for i in range(1, 16)]  # 15 one-token words


def writer(words):
    """Writes ``words``; a continued turn goes on after the last carried word."""

    def script(chat, sample):
        if len(chat) == 2:
            return " ".join(words)
        last = chat[2]["content"].split()[-1]
        return " ".join(words[words.index(last) + 1 :])

    return script


def tail_engine(backend, chunk=8, head=2, keep=3, chunks=4, **kwargs):
    window = TailWindow(chunk=chunk, head=head, tail=keep, max_chunks=chunks)
    protocol = Protocol(rounds=chunks, carry_over="tail", window=window)
    return RolloutEngine(backend, protocol, SamplingParams(max_new_tokens=999), **kwargs)


def test_tail_chunks_carry_head_and_tail_and_stop_at_end_of_sequence():
    backend = ScriptedBackend(writer(THOUGHT))
    traj = tail_engine(backend).run(["Q"])[0]
    # chunk 1 writes C = 8; later chunks C - h - m = 3; the thought ends (no truncation) in chunk 4
    assert [r.completion_tokens for r in traj.rounds] == [8, 3, 3, 1]
    assert [r.truncated for r in traj.rounds] == [True, True, True, False]
    assert traj.final_text.split() == THOUGHT
    words = {i: w for w, i in backend.vocab.items()}
    carried = [[words[t] for t in p] for p in backend.prefixes[1:]]
    assert carried == [
        ["w1", "w2", "w6", "w7", "w8"],
        ["w1", "w2", "w9", "w10", "w11"],
        ["w1", "w2", "w12", "w13", "w14"],
    ]
    assert [r.carried_tokens for r in traj.rounds] == [0, 5, 5, 5]
    # every chunk re-prompts the single-round chat; the thought part never exceeds C
    assert all(chat[0]["content"] == VANILLA_SYSTEM_PROMPT for chat in backend.chats)
    assert all(r.carried_tokens + r.completion_tokens <= 8 for r in traj.rounds)
    assert backend.calls == [(1, 1)] * 4
    assert traj.answer_text(2).split() == THOUGHT[:11]


def test_tail_stops_after_max_chunks_and_when_chunk_one_ends():
    long = [f"x{i}" for i in range(40)]
    trajs = tail_engine(ScriptedBackend(writer(long)), chunks=3).run(["Q"])
    assert [r.completion_tokens for r in trajs[0].rounds] == [8, 3, 3]
    assert not trajs[0].stopped_early
    short = tail_engine(ScriptedBackend(writer(["a", "b"]))).run(["Q"])[0]
    assert len(short.rounds) == 1 and short.stopped_early


def test_tail_budget_accounting():
    traj = tail_engine(ScriptedBackend(writer(THOUGHT))).run(["What?"])[0]
    assert traj.completion_tokens == 15
    # the fake counts the question word plus carried words as prompt tokens
    assert [r.context_tokens for r in traj.rounds] == [9, 9, 9, 7]
    assert traj.largest_context == 9
    assert traj.to_dict()["carry_over"] == "tail"


def test_tail_continue_from_given_token_ids():
    backend = ScriptedBackend(writer(THOUGHT))
    engine = tail_engine(backend)
    ids = [backend._ids(THOUGHT[:8]), backend._ids(["done"])]
    firsts = [" ".join(THOUGHT[:8]) + " ", "done"]
    groups = engine.continue_from(
        ["Q1", "Q2"], firsts, k=2, first_token_ids=ids, first_truncated=[True, False]
    )
    assert [len(t.rounds) for t in groups[0]] == [4, 4]
    assert groups[0][0].final_text.split() == THOUGHT
    # a thought that ended in chunk 1 is not continued
    assert [len(t.rounds) for t in groups[1]] == [1, 1] and groups[1][0].stopped_early
    assert backend.calls[0] == (1, 2)  # chunk 2: one prompt, k samples
    with pytest.raises(ValueError, match="first_token_ids"):
        engine.continue_from(["Q"], ["x"], k=1)


def test_none_is_one_vanilla_pass():
    backend = ScriptedBackend(writer(THOUGHT))
    proto = ProtocolArgs(carry_over="none").protocol()
    traj = RolloutEngine(backend, proto, SamplingParams(max_new_tokens=64)).run(["Q"])[0]
    assert len(traj.rounds) == 1 and traj.rounds[0].completion_tokens == 15
    assert backend.chats[0][0]["content"] == VANILLA_SYSTEM_PROMPT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"carry_over": "tail", "rounds": 2}, "--tail-chunks"),
        ({"carry_over": "none", "rounds": 3}, "one pass"),
        ({"carry_over": "tail", "tail_chunk": 16, "tail_head": 8}, "--tail-chunk"),
        ({"carry_over": "tail", "tail_chunk": 16, "tail_keep": 16}, "--tail-keep"),
        ({"carry_over": "tail", "tail_chunks": 0}, "--tail-chunks"),
        ({"carry_over": "tail", "early_stop": True}, "--early-stop"),
        ({"carry_over": "delete"}, "--carry-over"),
    ],
)
def test_protocol_args_refuse_bad_windows(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ProtocolArgs(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "note"),
    [
        ({}, None),
        (
            {"tail_chunk": 64},
            "--tail-chunk 64: not used (--tail-* apply to --carry-over tail; this",
        ),
        ({"carry_over": "none", "tail_head": 8, "tail_keep": 8}, "--tail-head 8, --tail-keep 8: "),
        ({"tail_chunk": 8192, "tail_chunks": 5}, None),  # the defaults, written out
        ({"carry_over": "tail", "tail_chunk": 64, "tail_head": 8}, None),
    ],
)
def test_tail_options_without_tail_are_named(kwargs, note):
    found = ProtocolArgs(**kwargs).unused_tail()
    assert found == note if note is None else found.startswith(note)


@pytest.mark.parametrize(
    ("proto", "gen", "notes"),
    [
        ({}, {"later_max_new_tokens": 64}, []),
        ({"rounds": 1}, {"later_max_new_tokens": 64}, ["--later-max-new-tokens 64: not used (one"]),
        (
            {"carry_over": "none", "summary_rule": "strict"},
            {},
            ["--summary-rule strict: not used (one round (--carry-over none))"],
        ),
        (
            {"carry_over": "tail", "tail_chunk": 64, "tail_head": 8},
            {"max_new_tokens": 32},
            ["--max-new-tokens 32: not used (--carry-over tail: --tail-chunk and the window"],
        ),
        ({"carry_over": "tail", "tail_chunk": 64, "tail_head": 8}, {}, []),
    ],
)
def test_budgets_and_rules_a_run_does_not_use_are_named(proto, gen, notes):
    found = ProtocolArgs(**proto).unused_in_run(GenerationArgs(**gen))
    assert len(found) == len(notes) and all(
        f.startswith(n) for f, n in zip(found, notes, strict=True)
    )


@pytest.mark.parametrize(
    ("grid", "note"),
    [
        ("48=summary:3x16,none:1x48", "--tail-head 4: not used (they apply to tail cells; this"),
        ("48=summary:3x16,tail:5x16", None),
    ],
)
def test_a_grid_without_tail_cells_names_the_tail_options(grid, note):
    from motif.eval.grid import GridArgs, unused_tail

    found = unused_tail(GridArgs(grid=[grid]), ProtocolArgs(tail_head=4))
    assert found == note if note is None else found.startswith(note)


def test_an_error_stays_one_line_without_the_note(tmp_path, capsys):
    from motif.cli.main import main

    assert main(["infer", "1+1?", "--tail-keep", "8", "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "note:" not in err


def test_protocol_args_resolve_rounds():
    assert ProtocolArgs().rounds == 3
    assert ProtocolArgs(carry_over="none").rounds == 1
    tail = ProtocolArgs(carry_over="tail", tail_chunk=64, tail_head=8, tail_chunks=3)
    assert tail.rounds == 3 and tail.window().total_budget == 64 + 2 * (64 - 8 - 32)


# --------------------------------------------------------------------------- eval rows


def test_eval_grades_the_thought_so_far_after_each_chunk(tmp_path):
    from motif.eval.runner import run_eval

    def thinker(chat, sample):
        words = ["<reasoning>", "a", "b", "c", "d", "e", "f", "</reasoning>", "<answer>"]
        words += [f"\\boxed{{{sum_of(chat[:2])}}}", "</answer>"]
        return writer(words)(chat, sample)

    proto = ProtocolArgs(carry_over="tail", tail_chunk=8, tail_head=1, tail_keep=4, tail_chunks=3)
    summary = run_eval(
        args(tmp_path), ModelArgs(), GenerationArgs(), proto, backend_loader=loader_for(thinker)
    )
    row = rows_of(tmp_path / "out")[0]
    assert [r["correct"] for r in row["rounds"]] == [False, True]
    assert row["carry_over"] == "tail" and row["generated_tokens"] == 11
    assert row["largest_context"] == max(r["context_tokens"] for r in row["rounds"])
    metrics = summary["metrics"]
    assert metrics["pass@1"] == 1.0
    assert metrics["rounds"]["transitions"][0]["fixed_rate"] == 1.0
    assert metrics["tokens"]["generated_total"] == 11 * metrics["problems"]
    window = summary["config"]["protocol"]["window"]
    assert window == {"chunk": 8, "head": 1, "keep": 4, "chunks": 3}
    assert "tail 3 chunks of 8" in summary["label"]


# --------------------------------------------------------------------------- tiny model


@pytest.mark.parametrize("decode", ["fast", "generate"])
def test_continuing_a_turn_matches_one_uncut_pass_token_for_token(tokenizer, decode):
    from conftest import build_sharp_model
    from motif.backends.hf import TransformersBackend

    backend = TransformersBackend(
        build_sharp_model(tokenizer, seed=3), tokenizer, decode=decode, decode_dtype="model"
    )
    chat = round_messages("What is 2 + 3?", 1, 1)
    whole = backend.generate([chat], SamplingParams(max_new_tokens=24))[0]
    assert len(whole.token_ids) == 24  # no EOS: every prefix below continues a started turn
    for cut in (1, 9, 17):
        prefix = whole.token_ids[:cut]
        out = backend.generate([chat], SamplingParams(max_new_tokens=24 - cut), prefixes=[prefix])
        assert out[0].token_ids == whole.token_ids[cut:]
        assert out[0].prompt_tokens == whole.prompt_tokens + cut


def test_engine_tail_on_a_tiny_model_keeps_the_context_bounded(tokenizer):
    from conftest import build_sharp_model
    from motif.backends.hf import TransformersBackend

    backend = TransformersBackend(
        build_sharp_model(tokenizer, seed=3), tokenizer, decode_dtype="model"
    )
    traj = tail_engine(backend, chunk=12, head=2, keep=4, chunks=3).run(["What is 2 + 3?"])[0]
    assert [r.completion_tokens for r in traj.rounds] == [12, 6, 6]
    prompt = traj.rounds[0].prompt_tokens
    assert [r.context_tokens for r in traj.rounds] == [prompt + 12] * 3
    assert len(traj.thought_ids) == 24


# --------------------------------------------------------------------------- templates


THINKING = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}<think>\n\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_the_default_template_continues_an_assistant_turn(tokenizer):
    check_continuation(tokenizer)


def test_a_template_that_reformats_the_turn_is_refused(tokenizer):
    thinking = copy.deepcopy(tokenizer)
    thinking.chat_template = THINKING
    with pytest.raises(ConfigError, match="--carry-over tail needs a chat template"):
        check_continuation(thinking)


@pytest.fixture
def config_only_checkpoint(tmp_path, tokenizer, tiny_model):
    """A checkpoint directory with a config and a thinking template but no weights."""
    tiny_model.config.save_pretrained(tmp_path)
    thinking = copy.deepcopy(tokenizer)
    thinking.chat_template = THINKING
    thinking.save_pretrained(tmp_path)
    return tmp_path


def test_checks_run_before_any_weights_load(config_only_checkpoint):
    from motif.runtime import check_protocol_fits

    model = ModelArgs(model=str(config_only_checkpoint))
    tail = ProtocolArgs(carry_over="tail", tail_chunk=64, tail_head=8)
    with pytest.raises(ConfigError, match="continues an assistant turn"):
        check_protocol_fits(model, GenerationArgs(), tail)
    big = ProtocolArgs(carry_over="tail", tail_chunk=4096, tail_head=8)
    with pytest.raises(ConfigError, match="--tail-chunk 4096 .* context of 2048"):
        check_protocol_fits(model, GenerationArgs(), big)
    with pytest.raises(ConfigError, match="--later-max-new-tokens 2048"):
        check_protocol_fits(
            model, GenerationArgs(max_new_tokens=8, later_max_new_tokens=2048), ProtocolArgs()
        )
    check_protocol_fits(model, GenerationArgs(max_new_tokens=64), ProtocolArgs())


def test_cli_refuses_tail_on_such_a_model_in_one_line(config_only_checkpoint, capsys):
    from motif.cli.main import main

    code = main(
        [
            "infer",
            "Q?",
            "--model",
            str(config_only_checkpoint),
            "--carry-over",
            "tail",
            "--tail-chunk",
            "64",
            "--tail-head",
            "8",
            "--json",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("motif: error: --carry-over tail needs")
    assert sum(line.startswith("motif: error") for line in err) == 1


def test_vllm_backend_continues_a_turn_from_token_ids(tokenizer, default_model_dir, monkeypatch):
    import fakes_vllm
    from motif.backends.vllm import VLLMBackend

    for _ in fakes_vllm.use_fake_vllm(monkeypatch):
        backend = VLLMBackend(
            tokenizer, [tokenizer.eos_token_id], llm=scripted_llm(tokenizer, default_model_dir)
        )
        chat = round_messages("What?", 1, 1)
        plain = backend.generate([chat], SamplingParams(max_new_tokens=64))[0]
        prefix = tokenizer("So far", add_special_tokens=False)["input_ids"]
        continued = backend.generate([chat], SamplingParams(max_new_tokens=64), prefixes=[prefix])
        # the scripted engine names the prompt length it saw: the carried ids were appended
        assert continued[0].prompt_tokens == plain.prompt_tokens + len(prefix)
        assert continued[0].text == f"<answer>len{continued[0].prompt_tokens}-s0</answer>"


def test_tail_identity_holds_the_window_budgets_not_the_unused_flags(tmp_path):
    from motif.eval.runner import run_eval

    proto = ProtocolArgs(carry_over="tail", tail_chunk=8, tail_head=1, tail_keep=4, tail_chunks=3)
    first = run_eval(
        args(tmp_path),
        ModelArgs(),
        GenerationArgs(),
        proto,
        backend_loader=loader_for(writer(THOUGHT)),
    )
    assert first["config"]["sampling"]["max_new_tokens"] == 8
    assert first["config"]["sampling"]["later_max_new_tokens"] == 3
    # --max-new-tokens does not apply to tail: the directory resumes whatever it says
    again = run_eval(
        args(tmp_path),
        ModelArgs(),
        GenerationArgs(max_new_tokens=32),
        proto,
        backend_loader=loader_for(writer(THOUGHT)),
    )
    assert again["run"]["generated_problems"] == 0


def test_a_single_eval_is_refused_in_a_grid_directory(tmp_path):
    from motif.eval.runner import run_eval
    from motif.outdir import OutputDir

    OutputDir(tmp_path / "out", "new", "eval").claim()  # as motif eval --grid leaves it
    (tmp_path / "out" / "cells").mkdir()
    with pytest.raises(ConfigError, match="holds an equal-budget grid"):
        run_eval(
            args(tmp_path),
            ModelArgs(),
            GenerationArgs(),
            ProtocolArgs(),
            backend_loader=loader_for(writer(THOUGHT)),
        )


def test_infer_prints_a_one_pass_reply(capsys):
    from motif.cli.infer import print_text

    record = {
        "question": "Q",
        "carry_over": "none",
        "cut_round": None,
        "final_answer": None,
        "generated_tokens": 3,
        "largest_context": 9,
        "rounds": [
            {"round": 1, "text": "the whole reply", "completion_tokens": 3, "truncated": False}
        ],
    }
    print_text(record)
    out = capsys.readouterr().out
    assert "One pass (3 tokens)" in out and "the whole reply" in out and "Summary" not in out


def test_view_shows_tail_chunks_without_a_summary_state(tmp_path):
    from motif.eval.runner import run_eval
    from motif.view import build_data, load_view_run

    proto = ProtocolArgs(carry_over="tail", tail_chunk=8, tail_head=2, tail_keep=3, tail_chunks=4)
    run_eval(
        args(tmp_path),
        ModelArgs(),
        GenerationArgs(),
        proto,
        backend_loader=loader_for(writer(THOUGHT)),
    )
    data = build_data([load_view_run(tmp_path / "out")])
    chunks = data["problems"][0]["s"][0][0]["r"]
    assert [c["name"] for c in chunks] == ["Chunk"] * 4
    assert all(c["hs"] == "" and len(c["o"]) == 1 and "pre" not in c for c in chunks)
    assert "note" not in chunks[0] and "(5 tokens carried)" in chunks[1]["note"]


# --------------------------------------------------------------------------- whole-thought text


class ThoughtBackend(GenerationBackend):
    """Writes one fixed thought (real token ids), chunk by chunk, as a model would: a continued
    turn goes on where its carried tokens (``window.carried``) end. Outputs are made and text
    decoded exactly as the transformers backend makes and decodes them."""

    def __init__(self, tokenizer, thought, window):
        super().__init__()
        self.tokenizer, self.thought, self.window = tokenizer, list(thought), window

    def render(self, chats):
        return [(chat, []) for chat in chats]

    def continue_prompts(self, chats, prompts, prefixes):
        return [(chat, list(p)) for (chat, _), p in zip(prompts, prefixes, strict=True)]

    def detokenize(self, token_ids):
        from motif.backends.hf import decode_ids

        return decode_ids(self.tokenizer, token_ids)

    def _start(self, prefix):
        if not prefix:
            return 0
        ends = range(1, len(self.thought) + 1)
        return next(e for e in ends if self.window.carried(self.thought[:e]) == prefix)

    def _generate_chunk(self, prompts, params, num_samples, offset):
        from motif.backends.hf import make_output

        eos = [self.tokenizer.eos_token_id]
        outs = []
        for _chat, prefix in prompts:
            start = self._start(prefix)
            ids = self.thought[start : start + params.max_new_tokens]
            for _ in range(num_samples):
                outs.append(
                    make_output(ids, 20 + len(prefix), params.max_new_tokens, eos, self.tokenizer)
                )
        return outs


THIN_THOUGHT = "<reasoning>\nOne thousand.\n</reasoning>\n<answer>\n\\boxed{1\u2009000}\n</answer>"


def thin_space_thought(tokenizer):
    """(the thought's ids, EOS included; its window, chunk 1 ending inside the thin space)."""
    ids = tokenizer(THIN_THOUGHT, add_special_tokens=False)["input_ids"]
    split = next(k for k in range(len(ids)) if tokenizer.decode(ids[:k]).endswith("\ufffd"))
    window = TailWindow(chunk=split, head=2, tail=4, max_chunks=3)
    return [*ids, tokenizer.eos_token_id], window


def test_a_character_split_over_chunks_is_read_whole(tokenizer):
    from motif.grading import grade_response

    thought, window = thin_space_thought(tokenizer)
    backend = ThoughtBackend(tokenizer, thought, window)
    engine = RolloutEngine(
        backend, Protocol(rounds=3, carry_over="tail", window=window), SamplingParams()
    )
    traj = engine.run(["How much?"])[0]
    assert len(traj.rounds) == 2 and traj.rounds[0].truncated  # cut inside the thin space
    assert traj.final_text == THIN_THOUGHT
    assert "".join(r.text for r in traj.rounds) == THIN_THOUGHT
    assert all("\ufffd" not in r.text for r in traj.rounds)
    assert "\u2009" in traj.rounds[1].text  # the chunk that completed it holds it
    assert traj.rounds[1].answer == "\\boxed{1\u2009000}"
    assert grade_response(traj.final_text, "1000") is True
    assert traj.to_dict()["rounds"][0]["text"] == traj.rounds[0].text


def test_continuations_of_a_cut_chunk_are_graded_on_the_whole_thought(tokenizer):
    from motif.rewards import future_accuracy

    thought, window = thin_space_thought(tokenizer)
    engine = RolloutEngine(
        ThoughtBackend(tokenizer, thought, window),
        Protocol(rounds=3, carry_over="tail", window=window),
        SamplingParams(),
    )
    first = thought[: window.chunk]
    groups = engine.continue_from(
        ["How much?"],
        [tokenizer.decode(first, skip_special_tokens=True)],  # as TRL decodes a completion
        k=2,
        first_token_ids=[first],
        first_truncated=[True],
    )
    assert all(t.final_text == THIN_THOUGHT for t in groups[0])
    assert future_accuracy(groups, ["1000"], "default", 1.0) == [1.0]  # the training reward


def test_eval_rows_hold_whole_characters_and_grade_each_chunk(tokenizer, tmp_path):
    import json

    from motif.eval.runner import EvalArgs, run_eval

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "How much is a thousand?", "answer": "1000"}) + "\n")
    thought, window = thin_space_thought(tokenizer)
    proto = ProtocolArgs(
        carry_over="tail", tail_chunk=window.chunk, tail_head=2, tail_keep=4, tail_chunks=3
    )
    run_eval(
        EvalArgs(benchmark=str(data), output_dir=str(tmp_path / "out")),
        ModelArgs(),
        GenerationArgs(),
        proto,
        backend_loader=lambda _: ThoughtBackend(tokenizer, thought, window),
    )
    row = rows_of(tmp_path / "out")[0]
    assert [r["correct"] for r in row["rounds"]] == [False, True]
    assert "".join(r["text"] for r in row["rounds"]) == THIN_THOUGHT
    assert not any("\ufffd" in r["text"] for r in row["rounds"])
