"""Run reports: content matches the run folder, LLM text is escaped, and a real headless chromium renders the HTML."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest

from kernelagent.report import summarise, write_reports

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>alert(1)</script>"
SPEC = """# Row softmax

Compute the softmax of a 2-D float32 tensor along its last dimension: for each row,
`exp(x - max(x)) / sum(exp(x - max(x)))`. Rows are independent; the row length is not a power of two.

```python
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=1)
```
"""
KERNEL = '''import torch
import triton
import triton.language as tl


@triton.jit
def softmax_kernel(out_ptr, in_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(in_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    num = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * n_cols + cols, num / tl.sum(num, axis=0), mask=cols < n_cols)


class ModelNew(torch.nn.Module):
    def forward(self, x):
        # Keeps a comparison so the HTML must escape it: a < b && c > d
        out = torch.empty_like(x)
        softmax_kernel[(x.shape[0],)](out, x, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1]))
        return out
'''
# (seed, round) -> verdict; seed 1 round 1 is the winner, seed 0 never passes.
VERDICTS = {
    (0, 0): {"passed": False, "failure_class": "compile_error", "wall_s": 1.9,
             "reason": "CompilationError: arange's range must be a power of 2", "evidence": "Traceback ...\n  x < y"},
    (0, 1): {"passed": False, "failure_class": "runtime_error", "wall_s": 2.4,
             "reason": f"RuntimeError in forward: {XSS}", "evidence": f"raised from {XSS}"},
    (0, 2): {"passed": False, "failure_class": "numerical_mismatch", "wall_s": 3.1,
             "reason": "input draw 0: 308 of 3200 elements differ beyond rtol=0.0001 | max abs err 0.0397",
             "evidence": "at (0, 4): got 0.0152, expected 0.0150"},
    (1, 0): {"passed": False, "failure_class": "no_code", "wall_s": None,
             "reason": "the reply held no ```python block", "evidence": ""},
    (1, 1): {"passed": True, "failure_class": None, "wall_s": 2.6,
             "reason": "matches the reference on 2 input draws", "evidence": ""},
}
TIMINGS = {
    "eager_ms": 0.0412,
    "compile_ms": 0.0305,
    "candidates": [
        {"label": "seed1/round1", "ms": 0.0188, "speedup_vs_eager": 2.19, "speedup_vs_compile": 1.62,
         "roofline_fraction": 0.71},
        {"label": "seed1/round1+opt2", "ms": 0.0151, "speedup_vs_eager": 2.73, "speedup_vs_compile": 2.02,
         "roofline_fraction": None},
    ],
    "optimise_rounds": [
        {"round": 0, "ms": 0.0188, "speedup_vs_eager": 2.19, "accepted": True},
        {"round": 1, "ms": 0.0240, "speedup_vs_eager": 1.72, "accepted": False},
        {"round": 2, "ms": 0.0151, "speedup_vs_eager": 2.73, "accepted": True},
    ],
}


def make_run(root: Path, *, timings: dict | None = None, passed: bool = True) -> Path:
    """A run folder laid out as the pipeline writes it (runs/store.py)."""
    run_id = "20261125-124512-softmax-c32fc0"
    run_dir = root / run_id
    verdicts = {k: v for k, v in VERDICTS.items() if passed or k != (1, 1)}
    for (seed, round_), verdict in verdicts.items():
        seed_dir = run_dir / "seeds" / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        (seed_dir / f"round{round_}.py").write_text(KERNEL)
        full = {"rule": None, "details": {"returncode": 0}, **verdict}
        (seed_dir / f"round{round_}.verdict.json").write_text(json.dumps(full, indent=2))
    (run_dir / "spec.md").write_text(SPEC)
    if passed:
        (run_dir / "kernel.py").write_text(KERNEL)
    seeds = [_seed_summary(run_dir, seed, verdicts) for seed in (0, 1)]
    winner = seeds[1] if passed else None
    result = {
        "run_id": run_id, "problem": "softmax", "mode": "reference", "device": "cpu" if timings is None else "cuda",
        "status": "passed" if passed else "failed", "winner": winner,
        "kernel_path": str(run_dir / "kernel.py") if passed else None, "seeds": seeds,
        "harness": {"mode": "reference", "draws": 2, "warnings": []},
        "settings": {"model": "gpt-5-mini", "seeds": 2, "rounds": 3, "stop_on_first_pass": True},
        "tokens": {"requests": 5, "input_tokens": 7421, "output_tokens": 2310},
    }
    result.update({"timings": timings} if timings is not None else {})
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    meta = {"status": result["status"], "spec": "examples/softmax.md", "problem": "softmax", "updated": 1795610719.2}
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def _seed_summary(run_dir: Path, seed: int, verdicts: dict) -> dict:
    rounds = sorted(r for s, r in verdicts if s == seed)
    last = verdicts[(seed, rounds[-1])]
    history = [{"round": r, **{k: verdicts[(seed, r)][k] for k in ("passed", "failure_class", "reason", "wall_s")}}
               for r in rounds]
    return {"seed": seed, "passed": last["passed"], "rounds": len(rounds), "outcome": "passed" if last["passed"]
            else "exhausted", "candidate_path": str(run_dir / "seeds" / f"seed{seed}" / f"round{rounds[-1]}.py"),
            "last_verdict": {"failure_class": last["failure_class"], "reason": last["reason"]}, "history": history}


class TableRows(HTMLParser):
    """Collects the attempt table's rows as lists of cell text (the evidence <details> left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_details = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "table":
            self._in_table = attrs.get("id") == "attempt-table"
        elif self._in_table and tag == "tr" and "attempt" in (attrs.get("class") or ""):
            self.rows.append([])
        elif self._in_table and self.rows and tag == "td":
            self.rows[-1].append("")
        self._in_details = self._in_details or tag == "details"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        self._in_details = self._in_details and tag != "details"

    def handle_data(self, data: str) -> None:
        if self._in_table and self.rows and self.rows[-1] and not self._in_details:
            self.rows[-1][-1] += data


def attempt_rows(html: str) -> list[list[str]]:
    parser = TableRows()
    parser.feed(html)
    return [[" ".join(cell.replace("★", "").split()) for cell in row] for row in parser.rows]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "plain")


@pytest.fixture
def timed_run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "timed", timings=TIMINGS)


def test_attempt_table_rows_match_verdict_files(run_dir: Path) -> None:
    _, html_path = write_reports(run_dir)
    expected = []
    for path in sorted(run_dir.glob("seeds/seed*/round*.verdict.json")):
        verdict = json.loads(path.read_text())
        seed, round_ = (int(n) for n in re.findall(r"\d+", str(path.relative_to(run_dir))))
        wall = "—" if verdict["wall_s"] is None else f"{verdict['wall_s']:.2f} s"
        expected.append([str(seed), str(round_), "passed" if verdict["passed"] else "failed",
                         verdict["failure_class"] or "—", verdict["reason"], wall])
    assert attempt_rows(html_path.read_text()) == expected


def test_llm_text_is_escaped_in_html_and_markdown(run_dir: Path) -> None:
    md_path, html_path = write_reports(run_dir)
    html, md = html_path.read_text(), md_path.read_text()
    assert XSS not in html and XSS not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "a &lt; b &amp;&amp; c &gt; d" in html  # the kernel's own code, escaped inside <pre>
    assert "308 of 3200 elements differ beyond rtol=0.0001 \\| max abs err" in md  # a pipe must not split a cell


def test_winner_code_and_problem_in_both_reports(run_dir: Path) -> None:
    md_path, html_path = write_reports(run_dir)
    html, md = html_path.read_text(), md_path.read_text()
    assert "Row softmax" in html and "the row length is not a power of two" in html
    assert 'id="kernel-code"' in html and "softmax_kernel[(x.shape[0],)]" in html
    assert "```python\n" + KERNEL.rstrip() + "\n```" in md
    assert "seed1/round1 after 2 round(s)" in md
    assert "7421" in html and "2310" in md


def test_failed_run_has_no_kernel(tmp_path: Path) -> None:
    md_path, html_path = write_reports(make_run(tmp_path, passed=False))
    html = html_path.read_text()
    assert "No candidate passed verification" in html and 'id="kernel-code"' not in html
    assert "FAILED" in md_path.read_text()


def test_speedups_only_with_timings(run_dir: Path, timed_run_dir: Path) -> None:
    _, plain_html = write_reports(run_dir)
    plain = plain_html.read_text()
    assert 'id="speedup-table"' not in plain and "Not timed (CPU interpreter run)" in plain
    assert plain.count("<img ") == 1  # the timeline only
    timed_md, timed_html = write_reports(timed_run_dir)
    timed = timed_html.read_text()
    assert 'id="speedup-table"' in timed and 'id="optimise-table"' in timed
    assert "2.73×" in timed and "71%" in timed and "Not timed" not in timed
    assert timed.count("<img ") == 3  # timeline, speedup per candidate, per optimisation round
    # An old result.json (no intervals, no CUDA-graph figures) says so rather than leaving the columns out.
    assert "| seed1/round1 | 0.0188 ms | no interval | — | — | 2.19× | 1.62× | 71% |" in timed_md.read_text()


def test_html_is_self_contained(timed_run_dir: Path) -> None:
    _, html_path = write_reports(timed_run_dir)
    html = html_path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_plots_are_decodable_pngs(timed_run_dir: Path) -> None:
    _, html_path = write_reports(timed_run_dir)
    payloads = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_path.read_text())
    assert len(payloads) == 3
    for payload in payloads:
        raw = base64.b64decode(payload)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = matplotlib.image.imread(io.BytesIO(raw)).shape[:2]
        assert width > 100 and height > 100


def test_summary(run_dir: Path, timed_run_dir: Path) -> None:
    text = summarise(run_dir)
    assert "Row softmax" in text and "PASSED" in text and "winner: seed1/round1" in text
    assert "5 across 2 seed(s)" in text and "1 compile_error" in text
    assert "not timed (CPU interpreter run)" in text
    assert "best seed1/round1+opt2 0.0151 ms, 2.73× vs eager, 2.02× vs torch.compile" in summarise(timed_run_dir)


def test_history_fills_in_when_verdict_files_are_gone(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "seeds" / "seed0")
    _, html_path = write_reports(run_dir)
    rows = attempt_rows(html_path.read_text())
    assert [row[:2] for row in rows] == [["0", "0"], ["0", "1"], ["0", "2"], ["1", "0"], ["1", "1"]]


# --- a real browser ---------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    install = subprocess.run([str(ROOT / ".ci" / "install-chromium")], capture_output=True, text=True, timeout=600)
    found = shutil.which("chromium")
    if install.returncode != 0 or not found:
        pytest.skip(f"chromium is missing and .ci/install-chromium failed (rc {install.returncode}): "
                    f"{(install.stderr or install.stdout)[-300:]}")
    return found


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=60)


def test_chromium_renders_table_and_plots(chromium: str, timed_run_dir: Path, tmp_path: Path) -> None:
    _, html_path = write_reports(timed_run_dir)
    dumped = run_chromium(chromium, tmp_path, "--dump-dom", html_path.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert '<table id="attempt-table"' in dom and dom.count('<tr class="attempt') == len(VERDICTS)
    assert dom.count('<img src="data:image/png;base64,') == 3
    assert "<script>" not in dom  # the escaped reason stayed text, not an element
    assert "alert(1)" in dom


def test_chromium_screenshot_is_not_blank(chromium: str, timed_run_dir: Path, tmp_path: Path) -> None:
    _, html_path = write_reports(timed_run_dir)
    shot = tmp_path / "shot.png"
    done = run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", html_path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    height, width = matplotlib.image.imread(shot).shape[:2]
    assert (width, height) == (1200, 2000)


def test_small_kernels_are_told_honestly(tmp_path: Path) -> None:
    """Timings as select writes them (intervals, the CUDA-graph and back-to-back figures): the report shows the
    interval, the CUDA-graph column and launch overhead beside the kernel time, says which column speedups use, and
    notes that launch overhead dominates under 20 us."""
    from kernelagent.bench.stats import with_interval
    from kernelagent.nodes.select import report_timings

    rounds = [0.0121, 0.0118, 0.0125, 0.0119, 0.0122, 0.0120, 0.0123]
    small = with_interval({"label": "seed1/round1", "path": "k.py", "ms": 0.0121, "rounds_ms": rounds,
                           "cudagraph_ms": 0.0046, "no_flush_ms": 0.0101, "speedup_vs_eager": 3.4})
    large = with_interval({"label": "seed0/round2", "path": "j.py", "ms": 0.4})  # an old-style result: no samples
    timing = {"reference": {"eager_ms": 0.0412, "compile_ms": 0.0305}, "candidates": [large, small],
              "incumbent": "seed1/round1", "finals": {"candidates": [small], "winner": "seed1/round1",
                                                      "rule": "the earliest finalist the lowest median does not clear"}}
    timings = report_timings(timing, [])
    assert timings["best"]["label"] == "seed1/round1" and timings["best"]["launch_overhead_ms"] == 0.0055
    assert "note" in timings["best"] and "note" not in timings["candidates"][0]
    md_path, html_path = write_reports(make_run(tmp_path, timings=timings))
    md, html = md_path.read_text(), html_path.read_text()
    row = "| seed1/round1 | 0.0121 ms | 0.0118–0.0125 ms (98%) | 0.0046 ms | 0.0055 ms | 3.40× | — | — |"
    assert row in md
    assert "| seed0/round2 | 0.4 ms | no interval | — | — |" in md
    assert "12.1 us a call: launch overhead dominates" in md and "launch-note" in html
    assert "Speedups use ms: the median of timed calls" in md and 'id="speedups-use"' in html
    assert 'id="finals-table"' in html and "Finalists, re-timed together" in md
    assert "(median; interval 0.0118–0.0125 ms (98%)); 12.1 us a call" in summarise(md_path.parent)
