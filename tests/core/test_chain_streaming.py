"""Streaming through Chain/Mix in small chunks equals one whole call (issue 21).

pedalboard reads each chunk with the previous chunk's channel count, so a square ``(2, 2)`` or a
one-frame ``(2, 1)`` chunk of a stereo stream stays stereo; blendfx's containers do the same and
hand their children ``(channels, samples)`` audio without guessing again, and hand pedalboard's
plugins short chunks without padding them (padding fed extra samples into the plugins' state).
"""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from blendfx import Chain, Mix, ParameterError
from blendfx.effects import Ducker, Utility

SR = 44100
N = 2205  # 50 ms: every chunk size below leaves a short last chunk


def signal(n=N, ch=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    burst = 0.5 * np.sin(2 * np.pi * 330 * t) * (t < n / SR / 3)
    return (burst + 0.05 * rng.standard_normal((ch, n))).astype(np.float32)


def natives():
    return [pedalboard.Delay(delay_seconds=0.004, feedback=0.3, mix=0.5),
            pedalboard.LowpassFilter(3000), pedalboard.Reverb(room_size=0.5),
            pedalboard.Chorus(), pedalboard.Compressor(threshold_db=-20, ratio=3)]


KINDS = {
    "native": lambda: Chain(natives()),
    "blendfx": lambda: Chain([Utility(gain_db=-2, pan=-0.3), Ducker(depth_db=15), Utility(invert=True)]),
    "mixed": lambda: Chain([natives()[0], Utility(gain_db=-3), None, *natives()[1:3], Ducker(depth_db=9),
                            Mix([natives()[3], Utility(pan=0.5), None]), natives()[4]]),
}


def stream(proc, x, size, channels_last=False):
    """``proc`` on ``x`` in chunks of ``size`` frames (the first with ``reset=True``)."""
    n = x.shape[-1]
    parts = []
    for start in range(0, n, size):
        chunk = x[..., start:start + size]
        out = proc(chunk.T if channels_last else chunk, SR, reset=(start == 0))
        parts.append(out.T if channels_last else out)
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 441])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_chunks_equal_whole(kind, size):
    x = signal()
    chain = KINDS[kind]()
    whole = chain(x, SR)  # also shows the chain the stream's layout
    chunked = stream(chain, x, size)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_chunks_equal_whole_channels_last(size):
    x = signal(seed=1)
    chain = KINDS["mixed"]()
    whole = chain(x.T, SR).T
    np.testing.assert_allclose(stream(chain, x, size, channels_last=True), whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_mono_vector_chunks_equal_whole(size):
    x = signal(ch=1, seed=2)[0]
    chain = Chain([pedalboard.Reverb(), Utility(gain_db=-1), pedalboard.HighpassFilter(200)])
    whole = chain(x, SR)
    np.testing.assert_allclose(stream(chain, x, size), whole, atol=1e-6, rtol=0)


def test_square_chunk_after_stereo_chunk():
    chain = Chain([pedalboard.Reverb()])
    x = signal(n=5, seed=3)
    a = chain(x[:, :3], SR, reset=False)
    b = chain(x[:, 3:], SR, reset=False)  # (2, 2): read as the stream's stereo
    assert a.shape == (2, 3) and b.shape == (2, 2)
    fresh = Chain([pedalboard.Reverb()])
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), fresh(x, SR), atol=1e-7)


def test_one_frame_last_chunk_of_a_stereo_stream():
    # 4000 frames in chunks of 3 leave one frame last: a (2, 1) chunk, one stereo frame
    x = (np.random.default_rng(1).standard_normal((2, 4000)) * 0.1).astype(np.float32)
    ours = Chain([pedalboard.Delay(delay_seconds=0.01, mix=0.5), pedalboard.LowpassFilter(3000)])
    theirs = pedalboard.Pedalboard([pedalboard.Delay(delay_seconds=0.01, mix=0.5),
                                    pedalboard.LowpassFilter(3000)])
    out = stream(ours, x, 3)
    assert out.shape == (2, 4000)
    np.testing.assert_array_equal(out, stream(theirs, x, 3))
    np.testing.assert_array_equal(out, ours(x, SR))


@pytest.mark.parametrize("make", [lambda: pedalboard.PitchShift(semitones=3),
                                  lambda: pedalboard.Resample(target_sample_rate=8000),
                                  lambda: pedalboard.MP3Compressor(vbr_quality=4)],
                         ids=["PitchShift", "Resample", "MP3Compressor"])
@pytest.mark.parametrize("size", [1, 3, 7])
def test_latency_plugins_stream_as_in_pedalboard(make, size):
    # these do not stream to the whole call's samples in pedalboard either: the same samples
    x = signal(seed=4)
    ours, theirs = Chain([make()]), pedalboard.Pedalboard([make()])
    ours(x[:, :50], SR)
    theirs(x[:, :50], SR)
    np.testing.assert_array_equal(stream(ours, x, size), stream(theirs, x, size))


def test_sidechain_chunks_read_in_the_input_layout():
    music, key = signal(seed=5), signal(seed=6) * 2
    duck = Chain([Ducker(depth_db=20, threshold_db=-40)])
    whole = duck(music, SR, sidechain=key)
    parts = [duck(music[:, i:i + 1], SR, reset=(i == 0), sidechain=key[:, i:i + 1])
             for i in range(music.shape[1])]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-6, rtol=0)


def test_building_a_chain_leaves_a_streaming_plugin_alone():
    x = signal(seed=7)
    delay = pedalboard.Delay(delay_seconds=0.01, feedback=0.5, mix=0.5)
    first = delay(x[:, :1205], SR)  # the larger chunk first: pedalboard re-prepares on growth
    Chain([delay])  # pedalboard's containers do not reset what they are given either
    Mix([None, delay])
    rest = delay(x[:, 1205:], SR, reset=False)
    whole = pedalboard.Delay(delay_seconds=0.01, feedback=0.5, mix=0.5)(x, SR)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), whole)


def test_reset_forgets_the_layout_and_reset_true_keeps_it():
    chain = Chain([Utility(gain_db=-6)])
    x = signal(n=10)
    chain(x, SR)
    assert chain(x[:, :2], SR, reset=True).shape == (2, 2)  # reset=True keeps the layout
    chain.reset()
    with pytest.raises(ParameterError, match="square"):
        chain(x[:, :2], SR)


def test_fresh_effect_still_refuses_a_square_array():
    with pytest.raises(ParameterError, match="square"):
        Utility()(np.zeros((2, 2)), SR)
    assert Utility()(np.ones((1, 1)), SR).shape == (1, 1)  # one mono sample is not ambiguous
