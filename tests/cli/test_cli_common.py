"""Every spelling the command line accepts means what it says, or is refused (motif.cli.common)."""

from __future__ import annotations

import pytest

from motif.cli.common import PENDING_NOTES, parse, print_notes, take_config
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError

COMMAND = ("motif infer", (ModelArgs, GenerationArgs, ProtocolArgs))
QUESTION = {"question": {"nargs": "?"}}


def _parse(argv, positional=None):
    return parse(*COMMAND, argv, positional=positional)


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("max_new_tokens: 7\nrounds: 2\n")
    return str(path)


def test_config_with_an_equals_sign_is_the_config(recipe):
    for argv in (["--config", recipe], [f"--config={recipe}"]):
        _, gen, proto = _parse(argv)
        assert (gen.max_new_tokens, proto.rounds) == (7, 2)
    _, gen, _ = _parse([f"--config={recipe}", "--max-new-tokens=9"])  # flags still win
    assert gen.max_new_tokens == 9


def test_a_recipe_is_read_whatever_the_spelling(tmp_path):
    from motif.cli.train import parse_config

    path = tmp_path / "t.yaml"
    path.write_text("max_steps: 3\ndataset: reasoning_gym:chain_sum\nlora_r: 4\n")
    for argv in (["--config", str(path)], [f"--config={path}"]):
        config = parse_config(argv)
        assert (config.optim.max_steps, config.data.dataset, config.lora.lora_r) == (
            3,
            "reasoning_gym:chain_sum",
            4,
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "a.yaml", "--config", "b.yaml"], "--config is given more than once"),
        (["--config=a.yaml", "--config", "b.yaml"], "--config is given more than once"),
        (["--config"], "--config needs a YAML file path"),
        (["--config="], "--config needs a YAML file path"),
        (["--config", "--rounds", "2"], "--config needs a YAML file path"),
    ],
)
def test_config_given_twice_or_empty_is_refused(argv, message):
    with pytest.raises(ConfigError, match=message):
        take_config(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--conf", "x.yaml"],  # argparse would take it for --config, and drop it
        ["--max-new", "5"],
        ["--temp", "0.5"],
    ],
)
def test_abbreviations_are_unknown_options(argv):
    with pytest.raises(ConfigError, match="unknown option"):
        _parse(argv)


@pytest.mark.parametrize(
    ("argv", "note"),
    [
        (
            ["--rounds", "2", "--rounds", "3"],
            "--rounds 2 and --rounds 3 both set rounds: the last, 3,",
        ),
        (
            ["--max-new-tokens", "2", "--max_new_tokens=3"],
            "--max-new-tokens 2 and --max_new_tokens 3 both set max_new_tokens: the last, 3,",
        ),
        (["--early-stop", "--early_stop", "false"], "--early-stop true and --early_stop false"),
    ],
)
def test_an_option_given_twice_keeps_the_last_and_says_so(argv, note, capsys):
    _parse(argv)
    assert capsys.readouterr().err == ""  # not before the command's checks
    print_notes()
    err = capsys.readouterr().err
    assert err.startswith(f"note: {note}") and err.count("\n") == 1


def test_three_uses_say_all(capsys):
    _parse(["--rounds", "1", "--rounds", "2", "--rounds", "3"])
    print_notes()
    assert "--rounds 1 and --rounds 2 and --rounds 3 all set rounds" in capsys.readouterr().err


def test_a_help_that_states_its_default_gets_no_second_one(capsys):
    from motif.cli.main import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert "Default 1. (default: 1)" not in text


def test_an_option_repeated_with_the_same_value_is_no_news(capsys):
    _, gen, _ = _parse(["--max-new-tokens", "5", "--max-new-tokens=5"])
    print_notes()
    assert gen.max_new_tokens == 5 and capsys.readouterr().err == ""


def test_a_list_option_given_twice_keeps_every_value(tmp_path):
    from motif.cli.train import parse_config

    path = tmp_path / "t.yaml"
    path.write_text("lora_target_modules: [o_proj]\n")
    flags = ["--lora-target-modules", "q_proj", "--lora_target_modules", "k_proj", "v_proj"]
    config = parse_config(["--config", str(path), *flags])
    assert config.lora.lora_target_modules == ["q_proj", "k_proj", "v_proj"]
    assert parse_config(["--config", str(path)]).lora.lora_target_modules == ["o_proj"]
    # a fresh parse starts again from the default (no state left from the last one)
    assert parse_config(["--lora-target-modules", "v_proj"]).lora.lora_target_modules == ["v_proj"]


def test_repeated_extra_carry_overs_add_up():
    from motif.training.config import LoraArgs
    from motif.training.sft_config import SftArgs

    types = (SftArgs, ModelArgs, ProtocolArgs, LoraArgs)
    sft, *_ = parse(
        "motif sft", types, ["--extra-carry-over", "tail", "--extra-carry-over", "none"]
    )
    assert sft.extra_carry_over == ["tail", "none"]
    assert PENDING_NOTES == []  # nothing was dropped: no note


def test_after_a_bare_double_dash_nothing_is_an_option():
    _, gen, _, pos = _parse(["--rounds", "2", "--", "--rounds"], positional=QUESTION)
    assert pos.question == "--rounds"


@pytest.mark.parametrize("key", ["config", "help"])
def test_a_yaml_key_that_is_not_an_option_is_refused(key, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"{key}: other.yaml\n")
    with pytest.raises(ConfigError, match=f"`{key}` is not an option"):
        _parse(["--config", str(path)])


def test_the_cli_notes_a_repeated_option_after_its_checks(tmp_path, capsys):
    from motif.cli.main import main

    assert main(["report", str(tmp_path / "none"), "--smoothing", "0.5", "--smoothing", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("motif: error: ") and err.count("\n") == 1  # the error alone
    from motif.cli.train import parse_config

    assert parse_config(["--max-steps", "3", "--max-steps", "4"]).optim.max_steps == 4
    print_notes()
    assert capsys.readouterr().err == (
        "note: --max-steps 3 and --max-steps 4 both set max_steps: the last, 4, is used\n"
    )


def test_eval_grid_reads_the_options_of_a_config_given_with_equals(tmp_path):
    from motif.cli.eval import given_options

    path = tmp_path / "g.yaml"
    path.write_text("max_new_tokens: 7\n")
    for argv in ([f"--config={path}"], ["--config", str(path)]):
        assert given_options([*argv, "--rounds", "2"]) == {"max-new-tokens", "rounds"}


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("rounds: 2.5\n", "rounds must be a whole number; got 2.5"),
        ("rounds: true\n", "rounds must be a whole number; got True"),
        ("rounds: '²'\n", "rounds must be a whole number; got '²'"),
        ("temperature: yes\n", "temperature must be a number; got True"),
        ("early_stop: 1\n", "early_stop must be true or false; got 1"),
    ],
)
def test_yaml_values_must_be_of_the_options_type(yaml_text, message, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=f"config file {path}: {message}"):
        _parse(["--config", str(path)])


def test_yaml_values_in_text_or_numbers_mean_the_same(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "rounds: '2'\nmax_new_tokens: 7\ntemperature: 1\nearly_stop: 'yes'\nmodel: 2024\n"
    )
    model, gen, proto = _parse(["--config", str(path)])
    assert (proto.rounds, gen.max_new_tokens, proto.early_stop, model.model) == (2, 7, True, "2024")
    assert gen.temperature == 1.0 and isinstance(gen.temperature, float)


def test_a_yaml_list_of_whole_numbers_is_checked_item_by_item(tmp_path):
    from motif.training.config import LoraArgs
    from motif.training.sft_config import SftArgs

    types = (SftArgs, ModelArgs, ProtocolArgs, LoraArgs)
    path = tmp_path / "s.yaml"
    path.write_text("extra_rounds: ['1', 2]\n")
    assert parse("motif sft", types, ["--config", str(path)])[0].extra_rounds == [1, 2]
    path.write_text("extra_rounds: [2, '²']\n")
    with pytest.raises(ConfigError, match="extra_rounds must be a whole number; got '²'"):
        parse("motif sft", types, ["--config", str(path)])
