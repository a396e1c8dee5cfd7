"""The playground page in a real browser: Playwright driving the operating system's Chromium.

Playwright's own browser download is not used: the test launches ``chromium`` from the OS packages (``apt-get
install chromium``; another binary with PLAYGROUND_CHROMIUM=/path). Without it the test is skipped and says why,
except under CI (CI=true), where it must run. The screenshots are saved in the tests' temporary folders
(PLAYGROUND_SCREENSHOTS=/folder keeps a copy there, to look at).
"""
import contextlib
import json
import math
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from core.config import load_config
from inference import head_habits, load_for_inference, next_logits, places, top_tokens, trace
from model.sampling import entropy_bits, next_token_probs
from playground import views
from playground.load import start_server

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("no Chromium on this machine (apt-get install chromium, or set PLAYGROUND_CHROMIUM)",
                allow_module_level=True)

SENTENCE = "He broke the glass."
# flags for a closed network: no background connections, no first-run or sync chatter; --no-sandbox as root
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "CI=true but no chromium: .ci/run installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def screenshot(page, path: Path, selector: str | None = None):
    """The whole page, or the element ``selector`` picks."""
    if selector:
        page.locator(selector).screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=True)
    if os.environ.get("PLAYGROUND_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["PLAYGROUND_SCREENSHOTS"]) / path.name)


@contextlib.contextmanager
def browser_page(browser, *server_args, height: int, before_load=None):
    """``play.py`` started with ``server_args`` and the page opened in Chromium (``before_load(page)`` first, to
    route requests); errors on the page collected."""
    server, url = start_server(*server_args)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": height})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} {r.failure}"))
        if before_load is not None:
            before_load(page)
        page.goto(url)
        page.wait_for_selector("html[data-started]", state="attached")   # typed text is never overwritten after
        page.errors = errors
        yield page
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def page(browser, play_checkpoint):
    with browser_page(browser, "--checkpoint", play_checkpoint, height=1000) as page:
        yield page


def bars(page) -> list[float]:
    return page.eval_on_selector_all("#bars rect.bar", "nodes => nodes.map(n => Number(n.dataset.prob))")


def entropy(page) -> float:
    return float(page.get_attribute("#entropy", "data-bits"))


def test_the_page_shows_tokens_attention_next_token_and_generation(page, play_checkpoint, tmp_path):
    loaded = load_for_inference(play_checkpoint)
    cfg = loaded.cfg.model

    # typing updates every view (debounced): token chips with their ids
    page.fill("#text", SENTENCE)
    page.wait_for_function(f"document.querySelectorAll('#tokens .chip').length === {len(SENTENCE)}")
    ids = page.eval_on_selector_all("#tokens .chip", "nodes => nodes.map(n => Number(n.dataset.id))")
    assert ids == loaded.tokenizer.encode(SENTENCE)
    assert page.get_attribute("#tokens .chip >> nth=0", "title") == f"id {ids[0]}"
    assert page.inner_text("#count").startswith(f"{len(SENTENCE)} char tokens of the 64-token context")

    # the attention grid: one small heatmap per block and head; a click enlarges one with a label per token
    page.wait_for_function(f"document.querySelectorAll('#attention-grid .cell').length === {cfg.n_layer * cfg.n_head}")
    assert page.eval_on_selector_all("#attention-grid canvas", "c => c.map(x => x.width)") == [len(SENTENCE)] * 4
    page.click("#attention-grid .cell[data-layer='1'][data-head='1']")
    assert page.inner_text("#attention-detail figcaption").startswith("block 1, head 1")
    assert page.locator("#attention-detail .query-label").count() == len(SENTENCE)
    assert page.locator("#attention-detail .key-label").count() == len(SENTENCE)
    page.hover("#attention-detail .headview .chip >> nth=5")                           # where does 'o' look?
    shaded = page.eval_on_selector_all("#attention-detail .headview .chip", "n => n.map(c => c.style.background)")
    assert all("59, 91, 219" in s for s in shaded[:6]) and "chip query" in page.get_attribute(
        "#attention-detail .headview .chip >> nth=5", "class")

    # the temperature slider re-shapes the bars and the entropy in the browser
    page.wait_for_selector("#bars rect.bar")
    before, h_before = bars(page), entropy(page)
    assert sum(before) <= 1 + 1e-6 and h_before > 0
    page.fill("#temperature", "0.3")
    sharp, h_sharp = bars(page), entropy(page)
    assert page.inner_text("#temperature-value") == "0.30"
    assert sharp[0] > before[0] and h_sharp < h_before
    page.fill("#temperature", "0")
    assert bars(page)[0] == 1 and entropy(page) == 0
    page.fill("#temperature", "2")
    assert entropy(page) > h_before
    page.fill("#temperature", "1")

    # greedy generation streams into the output, equal to the model's own greedy continuation
    page.click("#generate-btn")
    page.wait_for_function("document.querySelector('#gen-status').textContent.includes('tokens/s')", timeout=30_000)
    from inference import greedy_text

    expected = greedy_text(loaded, SENTENCE, min_chars=10**6, max_new_tokens=60)
    assert page.inner_text("#output .generated") == expected
    assert page.inner_text("#output .prompt") == SENTENCE

    # compare mode: two sentences side by side, and the cosine at every position they both have
    page.check("#compare-toggle")
    page.fill("#text-b", "He broke the news.")
    page.wait_for_function("document.querySelectorAll('#cosine .cos-cell').length === 18")
    assert page.locator("#attention-detail figure").count() == 2
    values = [float(v) for v in page.eval_on_selector_all("#cosine .cos-cell b", "n => n.map(b => b.textContent)")]
    assert values[: SENTENCE.index("g")] == [1.0] * SENTENCE.index("g")              # same prefix, same vector

    screenshot(page, tmp_path / "playground.png")
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    assert page.errors == []


TEXT_PANELS = ["#tokens-section", "#attention-section", "#next-section", "#ffn-section"]


def test_errors_are_shown_on_the_page_not_thrown(page, tmp_path):
    page.uncheck("#compare-toggle")
    page.fill("#text", "Zebra")
    page.wait_for_selector("#error:not([hidden])")
    assert "not in this model's vocabulary" in page.inner_text("#error")
    # every panel of the text says it was not redrawn and greys what it still shows; the token count too
    for panel in TEXT_PANELS:
        assert "stale" in page.get_attribute(panel, "class")
        assert page.inner_text(f"{panel} .panel-error").startswith("Not redrawn: the text above was refused")
    assert "stale" in page.get_attribute("#count", "class")
    screenshot(page, tmp_path / "refused-text.png")
    page.fill("#text", "")
    page.wait_for_function("document.querySelector('#error').textContent.startsWith('type some text')")
    page.fill("#text", SENTENCE)
    page.wait_for_selector("#error", state="hidden")
    page.wait_for_function("!document.querySelector('.stale')")
    assert page.eval_on_selector_all(".panel-error:not([hidden])", "n => n.length") == 0
    assert page.errors == []


SAMPLING_JS = "async (args) => (await import('/static/sampling.js'))"


def test_the_pages_softmax_equals_the_samplers(page, play_checkpoint):
    """``nextTokenProbs`` in static/sampling.js against ``model.sampling.next_token_probs`` on the model's own
    logits."""
    loaded = load_for_inference(play_checkpoint)
    with torch.no_grad():
        logits = loaded.model(torch.tensor([loaded.tokenizer.encode(SENTENCE)]))[0][0, -1]
    for temperature, top_k, top_p in [(1.0, None, None), (0.25, None, None), (1.7, None, None), (0.0, None, None),
                                      (1.0, 3, None), (0.9, None, 0.5), (1.4, 10, 0.8), (1.0, 1, None),
                                      (1e-45, None, None)]:
        got = page.evaluate(f"{SAMPLING_JS}.nextTokenProbs(...args)", [logits.tolist(), temperature, top_k, top_p])
        expected = next_token_probs(logits[None], temperature, top_k, top_p)[0]
        assert got == pytest.approx(expected.tolist(), abs=1e-6), (temperature, top_k, top_p)
    assert page.evaluate(f"{SAMPLING_JS}.entropyBits(args)", [0.5, 0.25, 0.25, 0]) == 1.5


def test_one_keystroke_is_one_request(page, play_checkpoint):
    """A key typed into the text box asks the server once (POST /api/page), and every panel of the text shows its
    answer: the tokens, the attention grid, the bars and the feed-forward grid, with a block's FFN left out too."""
    n_layer = load_for_inference(play_checkpoint).cfg.model.n_layer
    page.uncheck("#compare-toggle")
    for off in ("", str(n_layer - 1)):                      # every FFN on, then one block's left out
        page.fill("#text", "2+2")
        page.check(f"input[name=ffn-off][value='{off}']")
        listed = 5 if off else 0
        page.wait_for_function(f"document.querySelectorAll('#tokens .chip').length === 3 && "
                               f"document.querySelectorAll('#ffn-without li').length === {listed}")
        bars = page.eval_on_selector_all("#bars rect.bar", "n => n.map(b => b.dataset.prob).join()")
        requests = []

        def record(request):
            requests.append((request.method, urlparse(request.url).path))

        page.on("request", record)
        try:
            page.press("#text", "End")
            page.press("#text", "=")                               # one key
            page.wait_for_function("document.querySelectorAll('#tokens .chip').length === 4")
            page.wait_for_function("document.querySelectorAll('#attention-grid canvas')[0].width === 4")
            page.wait_for_function(f"[...document.querySelectorAll('#bars rect.bar')].map(b => b.dataset.prob)"
                                   f".join() !== {bars!r}")
            page.wait_for_function(f"document.querySelectorAll('#ffn-grid td.ffn-cell').length === {4 * n_layer} "
                                   f"&& document.querySelectorAll('#ffn-without li').length === {listed}")
        finally:
            page.remove_listener("request", record)
        assert requests == [("POST", "/api/page")], requests
    page.check("input[name=ffn-off][value='']")
    assert page.errors == []


def test_a_failing_train_panel_leaves_the_other_views_working(browser, play_checkpoint, tmp_path):
    """GET /api/train answered with a 500 at start: the Train panel says so under its heading, and the text's
    panels fill as usual."""
    def fail_train(page):
        page.route("**/api/train", lambda route: route.fulfill(status=500, content_type="application/json",
                                                              body='{"error": "internal error (the test said so)"}'))

    with browser_page(browser, "--checkpoint", play_checkpoint, height=1000, before_load=fail_train) as page:
        page.wait_for_selector("#train-section .panel-error:not([hidden])")
        assert page.inner_text("#train-section .panel-error") == "internal error (the test said so)"
        page.wait_for_selector("#tokens .chip")
        page.wait_for_selector("#attention-grid .cell")
        page.wait_for_selector("#bars rect.bar")
        page.wait_for_selector("#ffn-grid td.ffn-cell")
        assert page.is_hidden("#error")
        assert page.eval_on_selector_all(".panel-error:not([hidden])", "n => n.length") == 1
        screenshot(page, tmp_path / "train-panel-failed.png")
        assert page.errors == []


def test_stop_ends_a_generation(page):
    page.fill("#max-new-tokens", "500")
    page.check("input[name=mode][value=sample]")
    page.click("#generate-btn")
    page.click("#stop-btn")
    page.wait_for_function("document.querySelector('#gen-status').textContent.startsWith('stopped after')")
    assert page.is_enabled("#generate-btn") and not page.is_enabled("#stop-btn")
    assert len(page.inner_text("#output .generated")) < 500
    # the server noticed the closed stream and stopped the model too
    page.wait_for_function("fetch('/api/health').then(r => r.json()).then(h => h.generations.stopped_early >= 1 "
                           "&& h.generations.running === 0)")
    assert page.errors == [f"request failed: {page.url}api/generate net::ERR_ABORTED"]     # Stop aborts it
    page.errors.clear()


@pytest.fixture(scope="module")
def training_page(browser, play_checkpoint, tmp_path_factory):
    runs = tmp_path_factory.mktemp("page-runs")
    with browser_page(browser, "--checkpoint", play_checkpoint, "--runs", runs, height=1600) as page:
        page.runs = runs
        yield page


def probes(page) -> list[float]:
    return page.eval_on_selector_all("#probes td[data-p]", "nodes => nodes.map(n => Number(n.dataset.p))")


def test_train_from_the_page_watch_it_learn_stop_resume_and_use_the_model(training_page, tmp_path):
    page = training_page
    page.wait_for_selector("input[name=train-tokenizer][value=word]:checked")      # words by default
    page.check("input[name=train-tokenizer][value=char]")    # a 96-token context: slow enough to stop mid-run
    choices = page.eval_on_selector_all("#train-positions option", "options => options.map(o => o.value)")
    assert choices == ["sinusoidal", "learned", "rope", "none"] and page.input_value("#train-positions") == "sinusoidal"
    page.select_option("#train-positions", "rope")
    page.fill("#train-layers", "1")
    page.fill("#train-width", "32")
    page.fill("#train-steps", "5000")
    page.click("#train-btn")
    # the loss curve grows and the probe questions get answers, step by step
    page.wait_for_selector("#loss-chart polyline.train-line", timeout=60_000)
    # the untrained model is asked too (step 0), and each newer checkpoint adds a row to the table of answers
    page.wait_for_selector("#probes tr[data-step='0'] td[data-p]", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#probes tr[data-step]').length >= 2", timeout=60_000)
    assert all(0 <= p <= 1 for p in probes(page))
    assert "since it started" in page.inner_text("#train-clock")
    vocab = page.evaluate("fetch('/api/train').then(r => r.json()).then(s => s.vocab_size)")
    guess = float(page.get_attribute("#loss-chart .guess-line", "data-loss"))
    assert guess == pytest.approx(math.log(vocab)) and f"ln {vocab} = " in page.inner_text("#loss-note")
    assert page.locator("#loss-chart .y-tick").count() >= 3
    page.click("#train-stop-btn")
    page.wait_for_function("document.querySelector('#train-status').textContent.includes('stopped')",
                           timeout=60_000)
    run = page.inner_text("#train-status").split()[1].rstrip(":")
    assert page.inner_text("#train-disk").startswith("The page keeps its 10 newest runs (now 1)")  # the disk budget
    stopped_step = len(page.eval_on_selector_all("#loss-chart circle.val-dot", "n => n"))
    assert (page.runs / "playground" / run / "last.pt").is_file() and stopped_step >= 1
    # resume continues the same run; stop again; then every view runs on its checkpoint
    page.click("#train-resume-btn")
    page.wait_for_function("document.querySelector('#train-status').textContent.includes('training')",
                           timeout=60_000)
    page.wait_for_function(f"document.querySelectorAll('#loss-chart circle.val-dot').length > {stopped_step}",
                           timeout=90_000)
    page.click("#train-stop-btn")
    page.wait_for_function("document.querySelector('#train-status').textContent.includes('stopped')",
                           timeout=60_000)
    # the attention of one sentence at every checkpoint seen, behind a step slider
    page.wait_for_selector("#history:not([hidden])")
    slider_max = int(page.get_attribute("#history-step", "max"))
    assert slider_max >= 1 and page.eval_on_selector_all("#history-grid canvas", "n => n.length") == 4
    page.fill("#history-step", "0")
    page.dispatch_event("#history-step", "input")
    assert page.inner_text("#history-label") == "step 0"                # the untrained model's, first
    screenshot(page, tmp_path / "training.png")
    page.click("#train-use-btn")
    page.wait_for_function(f"document.querySelector('#card-summary').textContent.includes({run!r})")
    assert "1 blocks × 4 heads, width 32" in page.inner_text("#card-summary")
    assert "char tokenizer" in page.inner_text("#card-summary")
    page.wait_for_function("document.querySelectorAll('#attention-grid .cell').length === 4")   # 1 block × 4 heads
    page.wait_for_function("document.querySelector('#order-pair').textContent.includes('RoPE')")   # its positions
    assert page.is_visible("#pe-table")                                  # cos(p·θ_i), the angles q and k turn by
    page.locator("#positions-section").screenshot(path=tmp_path / "positions-rope.png")
    assert page.errors == []


def polyline_points(page, run: str, kind: str) -> int:
    return page.eval_on_selector(f"#runs-chart g[data-run='{run}'] polyline.{kind}",
                                 "n => n.getAttribute('points').split(' ').length")


def test_train_the_same_with_other_positions_and_compare_the_two_runs(training_page, tmp_path):
    """After the run above: "Train the same with positions: none" starts its variant, whose curve grows on the Runs
    chart beside the first one's; the chart's points are the lines of each run's metrics.jsonl, and the table lists
    the one setting in which the two differ."""
    page = training_page
    first = page.inner_text("#train-status").split()[1].rstrip(":")
    page.select_option("#train-variant-positional", "none")
    page.click("#train-variant-btn")
    page.wait_for_function(f"document.querySelector('#train-status').textContent.includes('training') && "
                           f"!document.querySelector('#train-status').textContent.includes({first!r})",
                           timeout=60_000)
    second = page.inner_text("#train-status").split()[1].rstrip(":")
    names = [f"playground/{first}", f"playground/{second}"]
    page.wait_for_selector(f"#runs-chart g[data-run='{names[1]}'] polyline.train-line", timeout=90_000)  # live
    page.click("#train-stop-btn")
    page.wait_for_function("document.querySelector('#train-status').textContent.includes('stopped')",
                           timeout=60_000)
    for name in names:                  # the stopped runs' files are final: the chart shows every line of them
        lines = [json.loads(line) for line in (page.runs / name / "metrics.jsonl").read_text().splitlines()]
        losses, evals = sum("loss" in m for m in lines), sum("val_loss" in m for m in lines)
        page.wait_for_function(f"document.querySelector(\"#runs-chart g[data-run='{name}'] polyline.train-line\")"
                               f"?.getAttribute('points').split(' ').length === {losses}", timeout=30_000)
        assert page.eval_on_selector_all(f"#runs-chart g[data-run='{name}'] circle.val-dot", "n => n.length") == evals
    rows = page.eval_on_selector_all("#runs-table tr.differs", "n => n.map(r => [...r.cells].map(c => c.textContent))")
    trained_with = load_config(page.runs / names[0] / "config.yaml").model.positional
    assert trained_with != "none" and rows == [["model.positional", "none", trained_with]]   # the newest run first
    facts = page.eval_on_selector_all("#runs-table tr.summary:nth-child(4) td[data-run]", "n => n.map(c => c.textContent)")
    assert re.fullmatch(r"\d+ of \d+ \(\d+%\) at step \d+", facts[1]), facts      # the first run's best.pt
    assert facts[0] == "no best.pt yet" if not (page.runs / names[1] / "best.pt").exists() else "%" in facts[0]
    page.check("#runs-log")
    assert "(log scale)" in page.text_content("#runs-chart")
    page.check("input[name=runs-x][value=tokens]")
    assert "training tokens" in page.text_content("#runs-chart")
    screenshot(page, tmp_path / "runs.png", "#runs-section")
    assert page.errors == []


def test_the_feedforward_view_shows_each_blocks_change_and_a_block_left_out(page, play_checkpoint):
    loaded = load_for_inference(play_checkpoint)
    page.fill("#text", "2+2=")
    n_layer = loaded.cfg.model.n_layer
    page.wait_for_function(f"document.querySelectorAll('#ffn-grid td.ffn-cell').length === {n_layer * 4}")
    assert page.eval_on_selector_all("input[name=ffn-off]", "n => n.length") == n_layer + 1
    page.check(f"input[name=ffn-off][value='{n_layer - 1}']")
    page.wait_for_function("document.querySelectorAll('#ffn-without li').length === 5")
    assert f"block {n_layer - 1}'s FFN left out" in page.inner_text("#ffn-without-title")
    without = page.eval_on_selector_all("#ffn-without li", "n => n.map(x => Number(x.dataset.prob))")
    expected = trace(loaded, "2+2=", drop_ffn=n_layer - 1).logits[-1].softmax(-1).topk(5).values.tolist()
    assert without == pytest.approx(expected, abs=1e-4)
    page.check("input[name=ffn-off][value='']")
    page.wait_for_function("document.querySelectorAll('#ffn-without li').length === 0")
    assert page.errors == []


def head_shown(page, block: int, head: int, query: int):
    page.wait_for_function(f"(d => d.block === '{block}' && d.head === '{head}' && d.query === '{query}')"
                           "(document.querySelector('#head-stages').dataset)")


def test_inside_a_head_opens_from_a_heatmap_and_follows_a_token(page, play_checkpoint, tmp_path):
    """Panel 4b: a click on a head of panel 4's grid opens it, a click on a token (or on a row of the enlarged
    heatmap) follows that token's query; every stage is drawn, and its softmax row is the Attention panel's row and
    the model's own weights. An unreadable text greys it with the other panels of the text."""
    loaded = load_for_inference(play_checkpoint)
    T = len(SENTENCE)
    page.uncheck("#compare-toggle")
    page.fill("#text", SENTENCE)
    page.wait_for_function(f"document.querySelector('#head-stages').dataset.query === '{T - 1}'")   # the last token
    page.click("#attention-grid .cell[data-layer='0'][data-head='1']")
    head_shown(page, 0, 1, T - 1)
    assert page.input_value("#head-block") == "0" and page.input_value("#head-head") == "1"
    page.select_option("#head-block", "1")                           # the block menu: panel 4 enlarges it too
    head_shown(page, 1, 1, T - 1)
    assert page.inner_text("#attention-detail figcaption").startswith("block 1, head 1")
    page.click("#head-tokens .chip >> nth=5")
    head_shown(page, 1, 1, 5)
    stages = page.eval_on_selector_all("#head-stages .stage", "n => n.map(s => s.dataset.stage)")
    assert stages == ["x", "normed", "q", "keys", "output", "concatenated", "projected", "after"]
    widths = page.eval_on_selector_all("#head-stages .stage", "n => n.map(s => [...s.querySelectorAll("
                                       "'canvas.strip')].map(c => c.width))")
    C, hs = loaded.cfg.model.n_embd, loaded.cfg.model.head_size
    assert widths[:3] == [[C], [C], [hs]] and widths[4:] == [[hs], [C], [C], [C]]
    assert widths[3] == [hs] + [hs] * 3 * 6                          # q, then k_j, q ⊙ k_j, v_j of tokens 0..5
    assert page.locator("#head-stages tr.future").count() == T - 6
    shown = page.eval_on_selector_all("#head-stages tr.key td.weight", "n => n.map(c => Number(c.dataset.w))")
    panel4 = page.evaluate("async () => (await import('/static/state.js')).state.page.attention.attention[1][1][5]")
    assert shown == pytest.approx(panel4, abs=6e-5)
    assert shown == pytest.approx(trace(loaded, SENTENCE).attention[1][1, 5, :6].tolist(), abs=1e-5)

    heatmap = page.locator("#attention-detail svg.heatmap")
    box = heatmap.bounding_box()
    label = page.locator("#attention-detail .query-label >> nth=3").bounding_box()     # the enlarged row of token 3
    heatmap.click(position={"x": box["width"] - 5, "y": label["y"] + label["height"] / 2 - box["y"]})
    head_shown(page, 1, 1, 3)
    page.locator("#head-section").screenshot(path=tmp_path / "inside-a-head.png")

    page.fill("#text", "Zebra")
    page.wait_for_selector("#head-section.stale")
    page.fill("#text", SENTENCE)
    page.wait_for_selector("#error", state="hidden")
    head_shown(page, 1, 1, T - 1)                                    # a new text: its last token again
    assert "stale" not in page.get_attribute("#head-section", "class")
    assert page.errors == []


OVERLAPS = """(chart) => {
  const boxes = [...document.querySelectorAll(`${chart} text`)].map((t) => t.getBBox());
  const pairs = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b, j) => {
    if (a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5)
      pairs.push([i, i + 1 + j]);
  }));
  return pairs;
}"""


def test_the_embedding_map_neighbours_and_position_table(page, play_checkpoint):
    loaded = load_for_inference(play_checkpoint)
    vocab, (T, C) = loaded.tokenizer.vocab_size, (loaded.cfg.model.block_size, loaded.cfg.model.n_embd)
    page.wait_for_function(f"document.querySelectorAll('#embedding-map circle').length === {vocab}")
    page.click("#embedding-map circle[data-id='5']")
    page.wait_for_function("document.querySelectorAll('#neighbours li').length === 8")
    assert page.eval_on_selector_all("#embedding-map circle.near", "n => n.length") == 8
    assert page.get_attribute("#embedding-map circle.picked", "data-id") == "5"
    assert page.get_attribute("#embedding-map text.picked", "data-id") == "5"      # the picked token is named
    assert "cos(dog, cat)" in page.inner_text("#word-cosine")
    assert page.eval_on_selector_all("#words-map circle.animal", "n => n.length") == 8
    assert page.is_visible("#words-legend") and " of these 16 words have" in page.inner_text("#words-measured")
    for chart in ("#embedding-map", "#words-map"):            # the labels drawn never overlap one another
        assert page.evaluate(OVERLAPS, chart) == [], chart
    page.wait_for_function("document.querySelectorAll('#order-pair li').length === 2")
    assert page.eval_on_selector("#pe-table", "s => [s.dataset.columns, s.dataset.rows]") == [str(C), str(T)]
    assert page.inner_text("#positions-section .colour-scale").startswith("−1")
    assert page.errors == []


WORDS = "This animal barks. This animal is a"


@pytest.fixture(scope="module")
def picker_runs(tmp_path_factory, play_checkpoint, play_word_checkpoint):
    """A runs folder holding a word-level and a character-level model, as `make demo` leaves it."""
    root = tmp_path_factory.mktemp("picker") / "runs"
    for name, checkpoint in [("toy_words", play_word_checkpoint), ("toy", play_checkpoint)]:
        (root / name).mkdir(parents=True)
        shutil.copy(checkpoint, root / name / "best.pt")
    return root


def chips(page) -> list[str]:
    return page.eval_on_selector_all("#tokens .chip", "nodes => nodes.map(n => n.firstChild.textContent)")


def test_the_model_picker_switches_every_view_from_words_to_letters(browser, picker_runs, play_word_checkpoint,
                                                                    play_checkpoint, tmp_path):
    word, char = load_for_inference(play_word_checkpoint), load_for_inference(play_checkpoint)
    with browser_page(browser, "--checkpoint", picker_runs / "toy_words" / "best.pt", "--runs", picker_runs,
                      height=1000) as page:
        page.wait_for_function("document.querySelectorAll('#model-picker option').length === 2")
        assert page.input_value("#model-picker") == "toy_words"
        names = page.eval_on_selector_all("#model-picker option", "n => n.map(o => o.textContent)")
        assert names[0].startswith("toy · a token per character") and "start-up" in names[1]

        # words: " dog" is one chip, and every view speaks in words
        page.fill("#text", WORDS)
        page.wait_for_function("document.querySelectorAll('#tokens .chip').length === 8")
        assert chips(page) == ["This", "␣animal", "␣barks", ".", "␣This", "␣animal", "␣is", "␣a"]
        page.fill("#text", "The dog chased the cat.")
        page.wait_for_function("document.querySelectorAll('#attention-detail .key-label').length === 6")
        assert chips(page) == ["The", "␣dog", "␣chased", "␣the", "␣cat", "."]
        for axis in ("query-label", "key-label"):                     # the enlarged heatmap: a word per row, column
            assert page.eval_on_selector_all(f"#attention-detail .{axis}", "n => n.map(x => x.textContent)") == chips(page)
        top = [t for _, t, _ in top_tokens(word.tokenizer, next_logits(word, word.tokenizer.encode("The dog chased the cat.")), 10)]
        page.wait_for_function(f"[...document.querySelectorAll('#bars rect.bar')].map(b => b.dataset.token).join('|') === {'|'.join(top)!r}")
        page.wait_for_function(f"document.querySelectorAll('#embedding-map circle').length === {word.tokenizer.vocab_size}")
        page.wait_for_function("document.querySelectorAll('#neighbours li').length === 8")     # " dog"'s, at once
        assert page.inner_text("#neighbours-title") == "nearest to ␣dog:"
        assert page.eval_on_selector_all("#embedding-map circle[data-kind=animal]", "n => n.length") == 8
        assert page.evaluate(OVERLAPS, "#embedding-map") == []
        assert "in the embedding table (their own rows): cos(␣dog, ␣cat) = " in page.inner_text("#word-cosine")
        screenshot(page, tmp_path / "picker-words.png")

        # letters: the picker switches the server, and every view follows
        page.select_option("#model-picker", "toy")
        page.wait_for_function("document.querySelector('#card-summary').textContent.startsWith('toy/best.pt')")
        text = "The dog chased the cat."
        page.wait_for_function(f"document.querySelectorAll('#tokens .chip').length === {len(text)}")
        assert chips(page) == [c.replace(" ", "␣") for c in text]
        page.wait_for_function(f"document.querySelectorAll('#embedding-map circle').length === {char.tokenizer.vocab_size}")
        page.wait_for_function(f"document.querySelectorAll('#attention-detail .key-label').length === {len(text)}")
        assert page.inner_text("#count").startswith(f"{len(text)} char tokens")
        assert page.input_value("#model-picker") == "toy"
        screenshot(page, tmp_path / "picker-letters.png")

        # back to the start-up model in one click (the server keeps the model shown: a reload would not go back)
        page.click("#startup-btn")
        page.wait_for_function("document.querySelector('#card-summary').textContent.startsWith('toy_words/best.pt')")
        page.wait_for_function("document.querySelectorAll('#tokens .chip').length === 6")
        page.wait_for_function("document.querySelector('#model-picker').value === 'toy_words'")   # listed again
        # a word the vocabulary never saw: one click, and its chip is marked <unk>
        page.click("#try-unknown")
        page.wait_for_function("document.querySelectorAll('#tokens .chip.unknown').length === 1")
        assert "read as <unk>: zebra" in page.inner_text("#count")
        assert page.errors == []


def test_each_one_click_experiment_loads_what_it_promises(page, play_checkpoint, tmp_path):
    loaded = load_for_inference(play_checkpoint)
    cfg = loaded.cfg
    page.uncheck("#compare-toggle")

    # "He broke the" at τ = 2 (a char model gets the space it chooses the word after): the entropy rises with τ
    page.click("#try-temperature")
    page.wait_for_function("document.querySelectorAll('#tokens .chip').length === 13")
    assert page.input_value("#text") == "He broke the " and page.input_value("#temperature") == "2"
    bits = page.eval_on_selector_all("#sweep tr[data-bits]", "n => n.map(r => Number(r.dataset.bits))")
    logits = next_logits(loaded, loaded.tokenizer.encode("He broke the "))[None].float()
    assert bits == pytest.approx([entropy_bits(next_token_probs(logits, tau)[0]) for tau in (0, 0.5, 1, 2)], abs=1e-4)
    assert bits[0] == 0 and bits == sorted(bits) and bits[3] > bits[2]
    assert entropy(page) == pytest.approx(bits[3], abs=1e-6)                # the bars are drawn at τ = 2
    page.fill("#temperature", "1")

    # the glass/news pair: both sentences, compared, and what the model writes after each
    page.evaluate("document.querySelector('#continuations').replaceChildren()")
    page.click("#try-glass-news")
    page.wait_for_function("document.querySelectorAll('#continuations li').length === 2")
    assert page.is_checked("#compare-toggle") and page.input_value("#text-b") == "He broke the news."
    continued = page.eval_on_selector_all("#continuations .continued", "n => n.map(x => x.textContent)")
    assert continued == [views.continuation(loaded, s) for s in ("He broke the glass.", "He broke the news.")]
    screenshot(page, tmp_path / "glass-news.png")

    # the heads lesson's sentence: each head captioned with the habit the lesson measures on it
    page.click("#try-heads")
    page.wait_for_function("document.querySelectorAll('#tokens .chip').length === 20 && "
                           "!document.querySelector('#compare-toggle').checked")
    t = trace(loaded, "\nHe broke the glass.")
    where = places(t.tokens)
    expected = [(max(where, key=h.get), max(h[p] for p in where)) for layer in head_habits(t) for h in layer]
    captions = page.eval_on_selector_all("#attention-grid .habit", "n => n.map(x => [x.dataset.place, "
                                         "Number(x.dataset.share)])")
    assert [c[0] for c in captions] == [e[0] for e in expected]
    assert [c[1] for c in captions] == pytest.approx([e[1] for e in expected], abs=1e-4)

    # the fact with each block's FFN left out in turn: what each leaves to the likeliest token, the worst one shown
    page.click("#try-ffn")
    page.wait_for_function(f"document.querySelectorAll('#ffn-sweep .ffn-drop').length === {cfg.model.n_layer}")
    text = "This animal barks. This animal is a "
    assert page.input_value("#text") == text
    top = trace(loaded, text).logits[-1].argmax()
    without = [trace(loaded, text, drop_ffn=b).logits[-1].softmax(-1)[top].item() for b in range(cfg.model.n_layer)]
    shown = page.eval_on_selector_all("#ffn-sweep .ffn-drop", "n => n.map(x => Number(x.dataset.prob))")
    assert shown == pytest.approx(without, abs=1e-4)
    worst = without.index(min(without))
    page.wait_for_function(f"document.querySelector('#ffn-without-title').textContent.includes('block {worst}')")
    assert page.is_checked(f"input[name=ffn-off][value='{worst}']")
    screenshot(page, tmp_path / "ffn-left-out.png")
    page.check("input[name=ffn-off][value='']")

    # the same model without positions: the Train panel is set to the shown model's shape and asked to train
    asked = []

    def train(route):                  # answered here: the run itself is the training tests' (it takes minutes)
        asked.append(route.request.post_data_json)
        route.fulfill(status=200, content_type="application/json", body='{"run": "20990101-000000"}')

    page.route("**/api/train", lambda route: train(route) if route.request.method == "POST" else route.continue_())
    try:
        page.click("#train-without-positions")
        page.wait_for_function("document.querySelector('#without-positions-note').textContent.includes('20990101')")
    finally:
        page.unroute("**/api/train")
    assert asked == [{"corpus": "toy", "positional": "none", "tokenizer": "char", "n_layer": cfg.model.n_layer,
                      "n_head": cfg.model.n_head, "n_embd": cfg.model.n_embd, "max_iters": cfg.train.max_iters,
                      "lr": cfg.train.lr, "seed": cfg.train.seed}]
    assert page.errors == []
