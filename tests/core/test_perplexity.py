"""PerplexityMeter: the direct math.fsum computation however the stream is cut and merged (hypothesis), golden
values, the analytic interval, validation, and reading NPY/CSV/JSONL files."""

import json
import math
import statistics
import warnings

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

import crossentropy as ce
from crossentropy.core.perplexity import perplexity_report, read_token_scores, text_bytes


def _direct(values, n_bytes=None):
    total = math.fsum(values)
    mean = total / len(values)
    return {"tokens": len(values), "nll_sum": total, "nll_mean": mean,
            "perplexity": math.exp(mean) if mean < 700 else math.inf,
            "bits_per_token": mean / math.log(2),
            "bits_per_byte": None if not n_bytes else total / (n_bytes * math.log(2))}


def _check(result, expected):
    assert result["tokens"] == expected["tokens"]
    for key in ("nll_sum", "nll_mean", "perplexity", "bits_per_token", "bits_per_byte"):
        if expected[key] is None:
            assert result[key] is None
        else:
            assert_close(result[key], expected[key], "compensated-sum")


nlls = st.lists(st.floats(0, 50) | st.floats(0, 1e-6) | st.sampled_from([1e8, 0.1, 1e-12]), min_size=1,
                max_size=300)


@given(nlls, st.data())
def test_any_cut_and_merge_equals_fsum(values, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=8)))
    pieces = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    byte_counts = data.draw(st.lists(st.integers(0, 1000), min_size=len(pieces), max_size=len(pieces)))
    meters = [ce.PerplexityMeter().update(np.array(p), n_bytes=b) for p, b in zip(pieces, byte_counts, strict=True)]
    order = data.draw(st.permutations(range(len(meters))))
    merged = ce.PerplexityMeter()
    for i in order:
        merged.merge(meters[i])
    _check(merged.result(), _direct(values, sum(byte_counts)))
    streamed = ce.PerplexityMeter()  # one meter, updated piece by piece
    for p in pieces:
        streamed.update(p)
    _check(streamed.result(), _direct(values))


def test_cancellation_prone_stream():
    # big and tiny values: a plain float64 running sum loses the tiny ones, the meter does not
    values = [1e16] + [1.0] * 1000
    meter = ce.PerplexityMeter()
    for v in values:
        meter.update([v])
    assert meter.result()["nll_sum"] == math.fsum(values)
    naive = 0.0
    for v in values:
        naive += v
    assert naive != math.fsum(values)  # the test can fail: a naive sum would


def test_golden_values_and_shapes():
    m = ce.PerplexityMeter().update(np.full((2, 3), math.log(4.0)), n_bytes=12)
    r = m.result()
    assert r["tokens"] == 6 and r["bytes"] == 12
    assert_close(r["perplexity"], 4.0)
    assert_close(r["bits_per_token"], 2.0)
    assert_close(r["bits_per_byte"], 1.0)  # 6 tokens x 2 bits over 12 bytes
    empty = ce.PerplexityMeter().result()
    assert empty["tokens"] == 0 and empty["perplexity"] is None and empty["bits_per_byte"] is None
    infinite = ce.PerplexityMeter().update([np.inf, 1.0]).merge(ce.PerplexityMeter().update([2.0])).result()
    assert infinite["perplexity"] == math.inf and infinite["nll_sum"] == math.inf


def test_confidence_interval_is_the_normal_interval_of_the_mean():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 1.5, size=500)
    r = ce.PerplexityMeter().update(values, n_bytes=2000).result(ci=0.95)
    sd = statistics.stdev(values.tolist())
    half = statistics.NormalDist().inv_cdf(0.975) * sd / math.sqrt(values.size)
    mean = math.fsum(values.tolist()) / values.size
    band = r["ci"]
    assert band["method"] == "analytic" and band["level"] == 0.95
    assert_close(r["nll_std"], sd)
    assert_close(band["nll_mean"], [mean - half, mean + half])
    assert_close(band["perplexity"], [math.exp(mean - half), math.exp(mean + half)])
    assert_close(band["bits_per_byte"], [(mean - half) * 500 / (2000 * math.log(2)),
                                         (mean + half) * 500 / (2000 * math.log(2))])
    assert band["perplexity"][0] < r["perplexity"] < band["perplexity"][1]
    narrow = ce.PerplexityMeter().update(values).result(ci=0.5)["ci"]["nll_mean"]
    assert band["nll_mean"][0] < narrow[0] < narrow[1] < band["nll_mean"][1]


@pytest.mark.parametrize("call,match", [
    (lambda m: m.update([1.0, np.nan]), "nll contains NaN"),
    (lambda m: m.update([1.0, -0.5]), "nll must be non-negative"),
    (lambda m: m.update([1.0], n_bytes=-3), "n_bytes must be non-negative"),
    (lambda m: m.result(ci=1.5), "`ci` must be"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ce.InputValueError, match=match):
        call(ce.PerplexityMeter())


def test_bad_types():
    with pytest.raises(ce.InputTypeError, match="n_bytes"):
        ce.PerplexityMeter().update([1.0], n_bytes=2.5)
    with pytest.raises(ce.InputTypeError, match="other"):
        ce.PerplexityMeter().merge({"tokens": 3})


def test_read_files(tmp_path):
    values = np.array([0.5, 1.25, 3.0])
    np.save(tmp_path / "n.npy", values.reshape(3, 1))
    (tmp_path / "plain.csv").write_text("0.5\n1.25\n3.0\n")
    (tmp_path / "headed.csv").write_text("token,logprob\na,-0.5\nb,-1.25\nc,-3.0\n")
    (tmp_path / "two.csv").write_text("x,y\n0.5,9\n1.25,9\n3.0,9\n")
    (tmp_path / "docs.jsonl").write_text(json.dumps({"nll": [0.5, 1.25]}) + "\n\n" + json.dumps({"nll": 3.0}) + "\n")
    (tmp_path / "flat.jsonl").write_text("-0.5\n[-1.25, -3.0]\n")
    assert_close(read_token_scores(tmp_path / "n.npy"), values)
    assert_close(read_token_scores(tmp_path / "plain.csv"), values)
    assert_close(read_token_scores(tmp_path / "headed.csv"), values)  # the column name says log-probs
    assert_close(read_token_scores(tmp_path / "two.csv", column="x"), values)
    assert_close(read_token_scores(tmp_path / "docs.jsonl"), values)
    assert_close(read_token_scores(tmp_path / "flat.jsonl", logprobs=True), values)
    with pytest.raises(ce.InputValueError, match="columns"):
        read_token_scores(tmp_path / "two.csv")
    with pytest.raises(ce.InputValueError, match="log-probabilities"):
        read_token_scores(tmp_path / "plain.csv", logprobs=True)
    with pytest.raises(ce.InputValueError, match="suffix"):
        read_token_scores(tmp_path / "n.txt")


def test_a_utf8_byte_order_mark_does_not_hide_the_header(tmp_path):
    """Issue 21 #29: with a BOM the first column is still named logprob (negated) and JSON lines still parse."""
    values = np.array([0.5, 1.25, 3.0])
    (tmp_path / "bom.csv").write_bytes("\ufefflogprob,token\n-0.5,a\n-1.25,b\n-3.0,c\n".encode())
    (tmp_path / "bom.jsonl").write_bytes(("\ufeff" + json.dumps({"nll": [0.5, 1.25, 3.0]}) + "\n").encode())
    assert_close(read_token_scores(tmp_path / "bom.csv"), values)
    assert_close(read_token_scores(tmp_path / "bom.jsonl"), values)


def test_report_with_text_bytes(tmp_path):
    np.save(tmp_path / "n.npy", np.array([1.0, 2.0]))
    text = tmp_path / "t.txt"
    text.write_text("héllo", encoding="utf-8")  # 6 UTF-8 bytes
    assert text_bytes(text) == 6
    r = perplexity_report(tmp_path / "n.npy", text=text, ci=0.9)
    _check(r, _direct([1.0, 2.0], 6))
    assert r["ci"]["level"] == 0.9
    with pytest.raises(ce.InputValueError, match="not both"):
        perplexity_report(tmp_path / "n.npy", text=text, n_bytes=6)
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ce.InputValueError, match="UTF-8"):
        text_bytes(tmp_path / "bad.txt")


# ------------------------------------------------------------------ issue 21.27: NLLs near the float range
@pytest.mark.parametrize("values", [[1e200] * 3, [1e200, 2e200, 3e200], [1e308, 1.5e308, 1e308], [1e-300, 2.0, 1e154]])
def test_meter_near_the_float_range(values):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meter = ce.PerplexityMeter().update(values[:2]).merge(ce.PerplexityMeter().update(values[2:]))
        r = meter.result(ci=0.95)
    top = max(values)  # the statistics of values / top in float64 without overflow, then scaled back
    scaled = [v / top for v in values]
    assert_close(r["nll_std"] / top, statistics.stdev(scaled), "float64-reference")
    assert_close(r["nll_mean"] / top, statistics.fmean(scaled), "float64-reference")
    total = sum(v / 2 for v in values)  # inf where the total is beyond the float range
    assert r["nll_sum"] == (math.fsum(values) if total < np.finfo(np.float64).max / 2 else math.inf)
