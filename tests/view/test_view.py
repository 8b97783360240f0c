"""`motif view`: the page's data, bad input, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval_fakes import ARITH, loader_for, reply, round_of, sum_of
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError
from motif.eval.runner import EvalArgs, run_eval
from motif.eval.store import ResultStore
from motif.view import build_data, load_view_run, write_page
from motif.view.page import EXCERPT_GRAPHEMES, embed_json, excerpt, output_pieces, render_page

HOSTILE = (
    '<script>window.__pwned = 1; alert(1)</script> <img src=x onerror="window.__pwned = 2">'
    " </script><script>window.__pwned = 3</script> & \u2028"
)


def base_script(chat, sample):
    """Round 1: odd sums off by one (wrong); round 2: right unless the sum is divisible by 3."""
    n, r = sum_of(chat), round_of(chat)
    if r == 1:
        text = reply(str(n + 1 if n % 2 else n))
        return text.replace("think", HOSTILE) if n == 5 else text
    return reply(str(n if n % 3 else n - 1))


def trained_script(chat, sample):
    """Right in both rounds; the problem with sum 17 writes past the token budget in round 1."""
    n = sum_of(chat)
    if n == 17 and round_of(chat) == 1:
        return reply(str(n)).replace("think", "step " * 80)
    return reply(str(n))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    gen = GenerationArgs(max_new_tokens=40)
    for name, script in (("base", base_script), ("trained", trained_script)):
        args = EvalArgs(benchmark=ARITH, output_dir=str(root / name))
        run_eval(args, ModelArgs(), gen, ProtocolArgs(rounds=2), backend_loader=loader_for(script))
    return root


def test_data_grades_states_and_prompts(runs):
    data = build_data([load_view_run(runs / "base"), load_view_run(runs / "trained")])
    problems = {p["q"]: p for p in data["problems"]}
    assert len(problems) == 6 and [r["rounds"] for r in data["runs"]] == [2, 2]
    five = problems["What is 2 + 3?"]
    (sample,) = five["s"][0]
    first, second = sample["r"]
    assert first["v"] is False and second["v"] is True and sample["v"] is True
    flags = five["f"][0]
    assert {k: v for k, v in flags.items() if k != "ho"} == {
        "n": 1, "c": 1, "w": 0, "u": 0, "fx": [2], "br": [], "cut": False
    }  # fmt: skip
    # the hand-over watch: round 1 boxes 6 before the last round and hands over only that box
    # (9 non-blank characters: short); 6 is not the final answer 5, so nothing is smuggled
    assert flags["ho"] == {"sm": [], "dg": [1], "cp": [], "bx": [1]}
    assert first["hw"] == ["dg", "bx"] and first["hd"] == "short" and "hw" not in second
    # the state handed over is the round's <answer> (paper rule), found in its text and
    # placed in round 2's prompt between pre and post
    assert first["hs"] == "\\boxed{6}" and first["o"][1] == "\\boxed{6}"
    assert first["o"][0].endswith("<answer>\n") and len(second["o"]) == 1  # last: unmarked
    assert second["pre"] == ' Progress in round 1: "' and second["post"].startswith('" Current')
    assert HOSTILE in first["o"][0]
    seventeen = problems["What is 10 + 7?"]
    assert seventeen["f"][1]["cut"] and not seventeen["f"][0]["cut"]
    # 42 is right after round 1 and broken in round 2 (divisible by 3)
    assert problems["What is 12 + 30?"]["f"][0]["br"] == [2]


def test_hand_over_watch_in_the_data(runs, tmp_path):
    """The trained run boxes the final answer in round 1 and hands it over: smuggled and boxed
    in round 1 (except 17, whose round 1 ran past its budget before any box); a run whose
    strategy hands no state (tail) gets no hand-over flags at all."""
    data = build_data([load_view_run(runs / "trained")])
    assert data["runs"][0]["handover"] is True
    assert data["flags"] == [["sm", "answer smuggled"], ["dg", "empty or degenerate state"],
                             ["cp", "state copied"], ["bx", "box before the last round"]]  # fmt: skip
    by_q = {p["q"]: p["f"][0]["ho"] for p in data["problems"]}
    assert by_q.pop("What is 10 + 7?")["sm"] == []
    assert all(ho["sm"] == [1] and ho["bx"] == [1] and ho["cp"] == [] for ho in by_q.values())
    tail = tmp_path / "tail"
    shutil.copytree(runs / "trained", tail)
    config = json.loads((tail / "eval_config.json").read_text())
    config["protocol"].update(carry_over="tail", window={"chunk": 40, "head": 8, "keep": 8,
                                                         "chunks": 2})  # fmt: skip
    (tail / "eval_config.json").write_text(json.dumps(config))
    (tail / "summary.json").unlink()
    plain = build_data([load_view_run(tail)])
    assert plain["runs"][0]["handover"] is False
    assert all("ho" not in p["f"][0] for p in plain["problems"])
    assert all("hw" not in rd for p in plain["problems"] for rd in p["s"][0][0]["r"])
    page = render_page(plain)
    assert 'id="ho"' not in page and 'id="ho"' in render_page(data)


def test_embedded_json_is_inert_and_equal():
    data = {"t": HOSTILE}
    text = embed_json(data)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == data


def test_page_is_self_contained(runs, tmp_path):
    out, _ = write_page([runs / "base", runs / "trained"], tmp_path / "p.html")
    html = out.read_text()
    page = html.split('id="motif-data">')[0] + html.split("</script>", 1)[1]
    assert "http:" not in page and "https:" not in page and "src=" not in page
    assert "url(" not in page and "default-src 'none'" in page  # CSP: no network
    assert html.count("<script") == 2  # the data block and the page's script
    assert "window.__pwned" in html and "<script>window.__pwned" not in html


def test_cut_off_and_bad_rows_are_skipped_and_counted(runs, tmp_path):
    run = tmp_path / "torn"
    shutil.copytree(runs / "base", run)
    # not splitlines(): row text holds U+2028, which it would split on
    lines = [line + "\n" for line in (run / "samples.jsonl").read_text().split("\n")]
    extra = json.dumps({"id": "x", "sample": 0}) + "\n"  # no rounds, no grade
    torn = lines[1][: len(lines[1]) // 2]  # a run killed mid-write
    (run / "samples.jsonl").write_text(lines[0] + "not json\n" + extra + lines[0] + torn)
    loaded = load_view_run(run)
    assert len(loaded.rows) == 1
    assert [why for _, why in loaded.skipped] == [
        "not JSON",
        "not a sample row (needs id, sample, rounds, correct)",
        "duplicate (problem, sample)",
        "not JSON (cut off)",
    ]
    out, data = write_page([run], tmp_path / "t.html")
    assert data["runs"][0]["skipped"] == 4 and "4 rows skipped (line 2: not JSON" in out.read_text()


def test_bad_input_is_refused(runs, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        ([tmp_path / "nope"], "is not a directory"),
        ([tmp_path / "empty"], "is not an eval run (no samples.jsonl)"),
    ]
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    shutil.copy(runs / "base" / "samples.jsonl", orphan)
    cases.append(([orphan], "neither eval_config.json nor summary.json"))
    other = tmp_path / "other"
    shutil.copytree(runs / "trained", other)
    for name in ("eval_config.json", "summary.json"):
        data = json.loads((other / name).read_text())
        (data.get("config", data))["data"]["benchmark"] = "gsm8k"
        (other / name).write_text(json.dumps(data))
    cases.append(([runs / "base", other], "are runs of different benchmarks"))
    for dirs, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            write_page(dirs, tmp_path / "x.html")
    with pytest.raises(ConfigError, match="must be an .html file"):
        write_page([runs / "base"], tmp_path / "x.md")
    assert not (tmp_path / "x.html").exists()


def test_view_command(runs, tmp_path, capsys):
    assert main(["view", str(runs / "base"), str(runs / "trained")]) == 0
    assert Path(capsys.readouterr().out.strip()) == runs / "base" / "view-vs-trained.html"
    out = tmp_path / "one.html"
    assert main(["view", str(runs / "base"), "--output", str(out), "--title", "<b>x</b>"]) == 0
    assert "<title>motif view: &lt;b&gt;x&lt;/b&gt;</title>" in out.read_text()
    assert main(["view", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("motif: error:") and err.count("\n") == 1


# --------------------------------------------------------------------------- text beyond ASCII
# Python counts code points, JavaScript UTF-16 units: every astral character (emoji, math
# letters) is one in Python and two in the page, so no position may cross between them.

SMILE, FAMILY, FLAG, THUMB = (
    "\U0001f600",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1eb\U0001f1f7",
    "\U0001f44d\U0001f3fd",
)
E_ACUTE = "e\u0301"  # e + COMBINING ACUTE ACCENT: one character on screen, two code points
NOISE = f"{SMILE}{SMILE} caf{E_ACUTE} 漢字かな {FAMILY} {FLAG} {THUMB} \U0001d465 ≥ 𝟘"


def unicode_round(k: int, state: str) -> str:
    """A round whose reasoning (and its state's own text) holds astral, combining and CJK text;
    the state also appears inside the reasoning, before the answer it must be found in."""
    return f"<reasoning>\n{NOISE} step {k}: {state} ?\n</reasoning>\n<answer>\n{state}\n</answer>{SMILE}"


def unicode_run(root: Path, source: Path, rounds: int = 3) -> tuple[Path, dict]:
    """A run whose questions and rounds hold emoji, combining marks and CJK; returns the
    directory and {question: [state handed over by each round]}."""
    config = json.loads((source / "eval_config.json").read_text())
    config["protocol"]["rounds"] = rounds
    questions = {
        # the list line's cut (110) falls inside a ZWJ family, a flag, a combining accent
        f"{SMILE * 3}{'q' * 103}{FAMILY} family": ["a" * 3, "b", "c"],
        f"{'x' * 109}{FLAG}{E_ACUTE} flag": [f"{FAMILY} = 3 people", "漢字", "d"],
        f"{'y' * 109}{E_ACUTE}{E_ACUTE} caf{E_ACUTE} accent": [f"caf{E_ACUTE} {SMILE}", "f", "g"],
        f"short {NOISE}": [f"{NOISE} \\boxed{{12}}", f"{SMILE}" * 5, "h"],
    }
    rows = []
    for i, (question, states) in enumerate(questions.items()):
        rounds_out = [
            {"round": k + 1, "text": unicode_round(k + 1, st), "answer": st, "correct": False}
            for k, st in enumerate(states[:rounds])
        ]
        rows.append(
            {
                "id": f"u{i}",
                "sample": 0,
                "gold": "1",
                "answer": "1",
                "correct": False,
                "question": question,
                "rounds": rounds_out,
            }
        )
    out = root / "unicode"
    ResultStore(out, config, samples=1).append(rows)
    return out, {q: st[:rounds] for q, st in questions.items()}


def graphemes(text: str) -> list[str]:
    import regex

    return regex.findall(r"\X", text)


def test_excerpt_never_splits_a_character():
    cases = {
        f"{SMILE * 3}{'q' * 103}{FAMILY} family": f"{SMILE * 3}{'q' * 103}{FAMILY} fa…",
        f"{'x' * 109}{FLAG}{E_ACUTE} flag": f"{'x' * 109}{FLAG}…",
        f"{'y' * 109}{E_ACUTE}{E_ACUTE} caf": f"{'y' * 109}{E_ACUTE}…",
        f"{'z' * 109}{THUMB}": f"{'z' * 109}{THUMB}",  # exactly 110 characters: no cut
        "漢" * 111: "漢" * 110 + "…",
        "": "",
    }
    for question, line in cases.items():
        assert excerpt(question) == line
        head = line.removesuffix("…")
        assert question.startswith(head) and len(graphemes(head)) <= EXCERPT_GRAPHEMES
        assert graphemes(head) == graphemes(question)[: len(graphemes(head))]
        assert line.encode("utf-16-le").decode("utf-16-le") == line  # no lone surrogate


def test_output_pieces_join_to_the_text_around_the_state():
    for state in ("abc", f"{FAMILY} = 3 people", f"caf{E_ACUTE} {SMILE}", "漢字", SMILE * 5):
        text = unicode_round(1, state)
        before, marked, after = output_pieces(text, state)
        assert before + marked + after == text and marked == state
        assert before.endswith("<answer>\n")  # the copy in the answer, not in the reasoning
    assert output_pieces(f"{SMILE} no answer tag: x=1", "x=1") == [
        f"{SMILE} no answer tag: ",
        "x=1",
        "",
    ]
    assert output_pieces(f"{SMILE} text", "absent") == [f"{SMILE} text"]
    assert output_pieces(f"{SMILE} text", "") == [f"{SMILE} text"]


# text of any code points (hypothesis leaves out lone surrogates), astral ones made likely
ANY_TEXT = st.lists(
    st.one_of(st.characters(), st.sampled_from([SMILE, FAMILY, FLAG, E_ACUTE])), max_size=140
).map("".join)


@given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
def test_pieces_and_excerpt_hold_for_any_text(before, state, after):
    text = f"{before}<answer>{state}</answer>{after}"
    pieces = output_pieces(text, state)
    assert "".join(pieces) == text and pieces[1::2] == ([state] if state else [])
    line = excerpt(text)
    head = line.removesuffix("…") if len(line) != len(text) else line
    assert text.startswith(head) and (head == text) == (line == text)
    clusters = graphemes(text)
    assert graphemes(head) == clusters[: min(len(clusters), EXCERPT_GRAPHEMES)]


def test_data_carries_pieces_not_positions(runs, tmp_path):
    run, states = unicode_run(tmp_path, runs / "base")
    data = build_data([load_view_run(run)])
    for problem in data["problems"]:
        assert problem["qs"] == excerpt(problem["q"])
        (sample,) = problem["s"][0]
        expected = states[problem["q"]]
        for k, rd in enumerate(sample["r"]):
            assert "st" not in rd and rd["hs"] == expected[k]
            assert "".join(rd["o"]) == unicode_round(k + 1, expected[k])
            # marked (o[1]) in every round but the last, which hands nothing over
            assert rd["o"][1::2] == ([] if k == len(expected) - 1 else [expected[k]])


def test_lone_surrogates_reach_the_page_intact(runs, tmp_path):
    text = "<answer>half an emoji: \ud83d</answer>"
    assert json.loads(embed_json({"t": text})) == {"t": text}
    embed_json({"t": text}).encode("utf-8")  # strict: raises on a lone surrogate
    # a row holding one (JSON may escape it), in a directory whose name is not UTF-8
    run = tmp_path / os.fsdecode(b"run-\xff")
    shutil.copytree(runs / "base", run)
    rows = (run / "samples.jsonl").read_text(encoding="utf-8").split("\n")
    row = json.loads(rows[0])
    row["rounds"][0]["text"] = text
    (run / "samples.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    out, data = write_page([run], tmp_path / "s.html")
    html = out.read_bytes().decode("utf-8")  # strict: the file is valid UTF-8
    assert data["problems"][0]["s"][0][0]["r"][0]["o"] == ["<answer>", text[8:-9], "</answer>"]
    assert "run-\ufffd" in html and "\\ud83d" in html and "\\udcff" in html


# --------------------------------------------------------------------------- a large run

WORDS = [
    "so",
    "the",
    "sum",
    "is",
    "then",
    "we",
    "add",
    "carry",
    "the",
    "digit",
    "next",
    "step",
    "check",
    "it",
    "again",
    "total",
]


def large_run(root: Path, source: Path, problems: int = 500, rounds: int = 2) -> Path:
    """A MATH500-sized run written through the store: ~1.5 kB of output per round."""
    config = json.loads((source / "eval_config.json").read_text())
    config["data"]["size"] = problems
    rng, out = random.Random(0), root / "large"
    store = ResultStore(out, config, samples=1)
    rows = []
    for i in range(problems):
        grades = [rng.random() < 0.4 + 0.1 * r for r in range(rounds)]
        rows.append(
            {
                "id": f"test/algebra/{i}.json",
                "sample": 0,
                "gold": str(i),
                "answer": str(i if grades[-1] else i + 1),
                "correct": grades[-1],
                "stopped_early": False,
                "question": f"Problem {i}: " + " ".join(rng.choices(WORDS, k=60)),
                "rounds": [
                    {
                        "round": r + 1,
                        "text": "<reasoning>\n"
                        + " ".join(rng.choices(WORDS, k=260))
                        + f"\n</reasoning>\n<answer>\nso far \\boxed{{{i if g else i + 1}}}\n</answer>",
                        "answer": str(i if g else i + 1),
                        "correct": g,
                        "prompt_tokens": 120,
                        "completion_tokens": 330,
                        "truncated": rng.random() < 0.1,
                    }
                    for r, g in enumerate(grades)
                ],
            }
        )
    store.append(rows)
    return out


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian chromium through selenium; skipped (with the reason) when absent."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no browser: apt-get install chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")
    service = webdriver.ChromeService(executable_path=driver)
    session = webdriver.Chrome(options=options, service=service)
    yield session
    session.quit()


def open_page(browser, path: Path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )


def set_value(browser, element_id: str, value) -> int:
    """Set a filter control as a user would, then return how many problems are listed."""
    event = "input" if element_id == "q" else "change"
    prop = "checked" if isinstance(value, bool) else "value"
    browser.execute_script(
        f"var e = document.getElementById(arguments[0]); e.{prop} = arguments[1];"
        f"e.dispatchEvent(new Event('{event}'));",
        element_id,
        value,
    )
    return len(browser.find_elements("css selector", "#list li"))


def test_page_in_browser_filters_and_escapes(runs, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    out, data = write_page([runs / "base", runs / "trained"], tmp_path / "cmp.html")
    open_page(browser, out)
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_element("id", "count").text == "6 of 6 problems"
    flags = [p["f"] for p in data["problems"]]
    assert set_value(browser, "status", "w") == sum(f[0]["w"] > 0 for f in flags) == 1
    assert set_value(browser, "on", "1") == 0  # the trained run gets everything right
    assert set_value(browser, "status", "") == 6
    assert set_value(browser, "cut", True) == 1
    assert set_value(browser, "cut", False) == 6
    assert set_value(browser, "on", "0") == 6
    assert set_value(browser, "change", "fx2") == sum(2 in f[0]["fx"] for f in flags) == 3
    assert set_value(browser, "change", "br2") == 1
    assert set_value(browser, "change", "") == 6
    smuggled = [f[0]["ho"]["sm"] for f in flags]
    assert set_value(browser, "ho", "sm") == sum(bool(rs) for rs in smuggled)
    assert set_value(browser, "ho", "sm1") == sum(1 in rs for rs in smuggled)
    assert set_value(browser, "on", "1") == 5  # trained: every box but 17's handed over
    assert set_value(browser, "on", "0") == set_value(browser, "ho", "sm")
    assert set_value(browser, "ho", "") == 6
    assert set_value(browser, "diff", "ne") == 1 and set_value(browser, "diff", "b") == 1
    assert set_value(browser, "diff", "a") == 0 and set_value(browser, "diff", "") == 6
    assert set_value(browser, "q", "IS 2 + 3") == 1  # not 12 + 30
    browser.find_element("css selector", "#list li").click()
    detail = browser.find_element("id", "detail")
    assert "<script>window.__pwned = 1; alert(1)</script>" in detail.text
    assert (
        browser.execute_script("return document.querySelectorAll('#detail script, img').length")
        == 0
    )
    badges = [b.text for b in detail.find_elements("css selector", ".hob")]
    assert badges == ["empty or degenerate state", "box before the last round"] + [
        "answer smuggled",
        "empty or degenerate state",
        "box before the last round",
    ]  # round 1 of A (6 handed over, 5 final), then round 1 of B (5 handed over and final)
    marks = [m.text for m in detail.find_elements("tag name", "mark")]
    assert marks[:3] == ["\\boxed{6}"] * 3  # in round 1's output, handed over, round 2's prompt
    assert browser.execute_script("return window.__pwned === undefined")


def test_large_run_page_size(runs, browser, tmp_path):
    """A MATH500-sized page loads and filters; its timings are printed, never asserted."""
    run = large_run(tmp_path, runs / "base")
    out, _ = write_page([run], tmp_path / "large.html")
    size = out.stat().st_size
    open_page(browser, out)
    load_ms = browser.execute_script("return window.motifView.loadMs")  # parse + list + detail
    page_ms = browser.execute_script(
        "var n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime"
    )
    assert browser.find_element("id", "count").text == "500 of 500 problems"
    set_value(browser, "q", "problem 12")
    filter_ms = browser.execute_script("return window.motifView.filterMs")
    print(
        f"large page: {size / 1e6:.2f} MB, navigation to load event {page_ms:.0f} ms, "
        f"script {load_ms:.0f} ms, filter {filter_ms:.0f} ms"
    )
    assert size < 4e6 and set_value(browser, "q", "") == 500


def test_page_in_browser_marks_the_state_exactly(runs, browser, tmp_path):
    """Emoji, combining marks and CJK before (and in) the carried state: every highlight in the
    real page is the state itself, and the list lines are whole characters."""
    run, states = unicode_run(tmp_path, runs / "base")
    out, data = write_page([run], tmp_path / "u.html")
    open_page(browser, out)
    lines = browser.execute_script(
        "return Array.from(document.querySelectorAll('#list li'), li => li.lastChild.textContent)"
    )
    assert lines == [excerpt(p["q"]) for p in data["problems"]]
    assert browser.execute_script("return arguments[0].every(s => s.isWellFormed())", lines)
    for i, problem in enumerate(data["problems"]):
        browser.execute_script("window.motifView.show(arguments[0])", i)
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('#detail .round'), c => Array.from("
            "c.querySelectorAll('pre'), p => [p.textContent, Array.from(p.querySelectorAll("
            "'mark'), m => m.textContent)]))"
        )
        (sample,) = problem["s"][0]
        assert shown == expected_columns(states[problem["q"]], sample["r"])
    # search folds Unicode normal forms: a typed precomposed "é" finds "e" + U+0301
    assert set_value(browser, "q", "caf\u00e9") == 2


def expected_columns(states: list[str], rounds: list[dict]) -> list[list]:
    """Per round column, [text, [marked texts]] of each <pre>: the prompt (previous state
    marked), the output (its own state marked unless it is the last), the state handed over."""
    columns = []
    for k, state in enumerate(states):
        column, last = [], k == len(states) - 1
        if k:
            prompt = "[question]" + rounds[k]["pre"] + states[k - 1] + rounds[k]["post"]
            column.append([prompt, [states[k - 1]]])
        column.append([unicode_round(k + 1, state), [] if last else [state]])
        if not last:
            column.append([state, [state]])
        columns.append(column)
    return columns
