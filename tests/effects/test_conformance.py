"""Every registered effect obeys pedalboard's calling convention (DESIGN.md section 4).

The list of effects comes from :data:`blendfx.EFFECT_REGISTRY`, so an effect added later is
checked without touching this file. Properties re-implemented from pedalboard's documented
behaviour: layouts kept, float32 out, empty passes, square raises, NaN raises, silence gives
finite output, same seed same output, reset semantics, chunked equals whole for streaming
effects, and thread safety.
"""

from __future__ import annotations

import threading

import blendfx
import numpy as np
import pytest
from blendfx import ParameterError

from .conformance_factories import FACTORIES, SKIP

SR = 44100
N = 4410 * 3  # 0.3 s: long enough for every effect, short enough to run them all quickly


def _names() -> list[str]:
    return sorted(blendfx.EFFECT_REGISTRY)


def make(name: str):
    if name in SKIP:
        pytest.skip(SKIP[name])
    factory = FACTORIES.get(name, blendfx.EFFECT_REGISTRY[name])
    return factory()


def signal(shape, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(max(shape)) / SR
    base = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    if len(shape) == 1:
        return base.astype(np.float64)
    channels = min(shape)
    stacked = np.stack([np.roll(base, 7 * c) for c in range(channels)])
    return (stacked if shape[0] == channels else stacked.T).astype(np.float64)


def run(effect, x, **kw):
    sc = signal((x.shape[-1] if x.ndim == 1 else max(x.shape),), seed=9)[None] * 0.5
    if getattr(effect, "uses_sidechain", False):
        kw.setdefault("sidechain", sc)
    return effect.process(x, SR, **kw)


@pytest.fixture(params=_names())
def name(request):
    return request.param


@pytest.mark.parametrize("shape", [(N,), (N, 1), (N, 2), (1, N), (2, N)])
def test_layout_kept(name, shape):
    effect = make(name)
    out = run(effect, signal(shape))
    assert out.dtype == np.float32
    assert out.ndim == len(shape)
    if len(shape) == 2:
        channels_last = shape[0] > shape[1]
        samples = out.shape[0] if channels_last else out.shape[1]
        assert samples > 0
        assert (out.shape[0] > out.shape[1]) == channels_last


def test_empty_passes(name):
    effect = make(name)
    for shape in [(0,), (2, 0)]:
        out = run(effect, np.zeros(shape))
        assert out.size == 0 and out.dtype == np.float32


def test_square_raises(name):
    with pytest.raises(ParameterError, match="square"):
        run(make(name), np.zeros((2, 2)))


def test_nan_raises(name):
    x = signal((N,))
    x[100] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        run(make(name), x)
    x[100] = np.inf
    with pytest.raises(ParameterError, match="NaN or infinite"):
        run(make(name), x)


def test_silence_finite(name):
    out = run(make(name), np.zeros((2, N)))
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= 1.0


def test_same_seed_same_output(name):
    x = signal((2, N))
    a = run(make(name), x)
    b = run(make(name), x)
    np.testing.assert_array_equal(a, b)


def test_reset_clears_state(name):
    effect = make(name)
    x = signal((2, N))
    first = run(effect, x)
    run(effect, signal((2, N), seed=3), reset=False)  # leave some state behind
    again = run(effect, x, reset=True)
    np.testing.assert_array_equal(first, again)


def _streaming_names() -> list[str]:
    """Effects whose class streams (``supports_streaming`` is not False): the chunked test
    runs only on them instead of skipping the offline ones on every run."""
    return [n for n in _names()
            if getattr(blendfx.EFFECT_REGISTRY[n], "supports_streaming", True) is not False]


@pytest.mark.parametrize("n", [1, 2, 7])
def test_offline_effects_take_any_length_instead_of_streaming(n):
    """What the offline effects promise in place of chunking: whole buffers of any length (a
    few samples are padded to ``min_seconds`` and the result cropped, or handled as they
    come), the same length out."""
    offline = sorted(set(_names()) - set(_streaming_names()))
    assert "Blend" in offline and "Utility" not in offline
    for name in offline:
        if name in ("MaskedImg2Img", "OutpaintInpaint", "Composer", "Stylizer"):
            continue  # (slow: the property suite feeds them short inputs)
        effect = make(name)
        x = signal((2, n + 2))[:, :n] if n > 2 else signal((n,))
        kw = {"sidechain": signal((n,), seed=9) * 0.5} if effect.uses_sidechain else {}
        out = effect.process(x, SR, **kw)
        assert out.shape[-1] == n and np.isfinite(out).all(), name


@pytest.mark.parametrize("name", _streaming_names())
def test_chunked_equals_whole(name):
    effect = make(name)
    assert effect.supports_streaming
    x = signal((2, N))
    sc = signal((N,), seed=9)[None] * 0.5
    kw = {"sidechain": sc} if effect.uses_sidechain else {}
    whole = effect.process(x, SR, **kw)
    effect.reset()
    chunks = []
    for i, start in enumerate(range(0, N, 1000)):
        ckw = {"sidechain": sc[:, start:start + 1000]} if effect.uses_sidechain else {}
        chunks.append(effect.process(x[:, start:start + 1000], SR, reset=(i == 0), **ckw))
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, atol=1e-6)


def test_threads_identical(name):
    effect = make(name)
    x = signal((2, N))
    expected = run(effect, x)
    results = [None] * 4

    def work(i):
        results[i] = run(effect, x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_unknown_parameter_raises(name):
    effect = make(name)
    with pytest.raises(ParameterError, match="no parameter 'not_a_param'"):
        effect.not_a_param = 1
    with pytest.raises(ParameterError):
        type(effect)(not_a_param=1)


def test_is_effect_flags(name):
    effect = make(name)
    assert effect.is_effect is True and effect.is_instrument is False
