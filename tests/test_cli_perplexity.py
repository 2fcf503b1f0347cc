"""The `crossentropy perplexity` subcommand run in process (tests/clirun.py): NPY/CSV/JSONL input, --logprobs, --bytes
/ --text, --ci, --json against the library's PerplexityMeter, and its errors (exit 2, one line)."""

import json
import math

import numpy as np
from clirun import fails, run
from conftest import assert_close

import crossentropy as ce


def test_perplexity_json_matches_the_meter(tmp_path):
    rng = np.random.default_rng(0)
    nll = rng.gamma(2.0, 1.0, size=200)
    np.save(tmp_path / "nll.npy", nll)
    text = tmp_path / "text.txt"
    text.write_text("naïve café " * 40, encoding="utf-8")
    n_bytes = len(text.read_bytes())
    out = json.loads(run("perplexity", str(tmp_path / "nll.npy"), "--text", str(text), "--ci", "0.95",
                         "--json").stdout)
    expected = ce.PerplexityMeter().update(nll, n_bytes=n_bytes).result(ci=0.95)
    assert out["tokens"] == 200 and out["bytes"] == n_bytes
    for key in ("perplexity", "bits_per_token", "bits_per_byte", "nll_mean"):
        assert_close(out[key], expected[key])
    assert_close(out["ci"]["perplexity"], expected["ci"]["perplexity"])


def test_perplexity_text_output_from_logprobs(tmp_path):
    (tmp_path / "lp.jsonl").write_text(json.dumps([-math.log(4.0)] * 3) + "\n")
    proc = run("perplexity", str(tmp_path / "lp.jsonl"), "--logprobs", "--bytes", "3")
    lines = dict(line.split(None, 1) if not line.startswith("bits") else line.rsplit(None, 1)
                 for line in proc.stdout.strip().splitlines())
    assert lines["tokens"].strip() == "3"
    assert float(lines["perplexity"]) == 4.0
    assert float(lines["bits per token"]) == 2.0 and float(lines["bits per byte"]) == 2.0
    (tmp_path / "n.csv").write_text("id,nll\n1,0.5\n")
    assert "n/a" in run("perplexity", str(tmp_path / "n.csv")).stdout


def test_perplexity_errors(tmp_path):
    (tmp_path / "n.csv").write_text("a,b\n0.5,1\n")
    fails("perplexity", str(tmp_path / "n.csv"), message="--column")
    fails("perplexity", str(tmp_path / "n.csv"), "--column", "a", "--logprobs", message="log-probabilities")
    fails("perplexity", str(tmp_path / "n.csv"), "--column", "a", "--bytes", "-4", message="n_bytes")
    fails("perplexity", str(tmp_path / "n.csv"), "--bytes", "3", "--text", "x", message="not allowed with")
    fails("perplexity", str(tmp_path / "missing.npy"), message="No such file")
