"""`motif view`: the page's data, bad input, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import pytest

from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError
from motif.eval.runner import EvalArgs, run_eval
from motif.eval.store import ResultStore
from motif.view import build_data, load_view_run, write_page
from motif.view.page import embed_json
from test_eval import ARITH, loader_for, reply, round_of, sum_of

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
    assert five["f"][0] == {"n": 1, "c": 1, "w": 0, "u": 0, "fx": [2], "br": [], "cut": False}
    # the state handed over is the round's <answer> (paper rule), found in its text and
    # placed in round 2's prompt between pre and post
    assert first["hs"] == "\\boxed{6}" and first["t"][first["st"] :].startswith("\\boxed{6}")
    assert second["pre"] == ' Progress in round 1: "' and second["post"].startswith('" Current')
    assert HOSTILE in first["t"]
    seventeen = problems["What is 10 + 7?"]
    assert seventeen["f"][1]["cut"] and not seventeen["f"][0]["cut"]
    # 42 is right after round 1 and broken in round 2 (divisible by 3)
    assert problems["What is 12 + 30?"]["f"][0]["br"] == [2]


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
    marks = [m.text for m in detail.find_elements("tag name", "mark")]
    assert marks[:3] == ["\\boxed{6}"] * 3  # in round 1's output, handed over, round 2's prompt
    assert browser.execute_script("return window.__pwned === undefined")


def test_large_run_page_size_and_speed(runs, browser, tmp_path):
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
    assert size < 4e6 and page_ms < 2000 and load_ms < 1000 and filter_ms < 1000
