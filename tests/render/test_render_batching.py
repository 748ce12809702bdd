"""Batching diffusion-generator windows across tracks (on the CPU, with the tiny pipeline).

Two tracks of a session each run an ``OutpaintInpaint`` on the same model: rendered with
``batch_tracks`` their windows share model calls (fewer, larger batches), and the result equals
the track-by-track render, since every window keeps its own clip's seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import read_audio
from blendfx.effects import OutpaintInpaint
from blendfx.effects.diffusion.generator import generate_batched
from blendfx.effects.diffusion.models import load_model
from blendfx.errors import ParameterError, SessionError
from blendfx.render.renderer import render_session
from blendfx.render.session import load_session

from ..effects.diffusion.test_diffusion import (
    _mel_distance,
    _one_thread,  # noqa: F401 - the autouse fixture: one torch thread
    rhythmic_noise,
)
from ..effects.diffusion.tiny_diffusion import tiny_model_folder
from ..sessionkit import write_session, write_stem

SR = 44100
#: Few steps, no classifier-free guidance (so a batch of B windows is a UNet batch of B).
FAST = dict(steps=2, guidance=1.0, inverse_iters=2, inverse_mel_iters=2)


def assert_same_music(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float rounding in batched kernels: that can move an image pixel by one
    level, which the phase retrieval spreads over the waveform (measured: 0.2 % of the peak)."""
    assert actual.shape == expected.shape
    peak = float(np.abs(expected).max())
    assert peak > 0.005  # music, not silence
    assert float(np.abs(actual - expected).max()) <= 0.01 * peak
    assert _mel_distance(actual, expected) <= 0.01


@pytest.fixture(scope="module")
def tiny() -> str:
    return tiny_model_folder()


@pytest.fixture
def unet_calls(tiny):
    """The batch size of every UNet call on the shared tiny model (the pipeline's work)."""
    unet = load_model(tiny, device="cpu").components["unet"]
    calls: list[int] = []
    forward = unet.forward

    def counting(sample, *args, **kwargs):
        calls.append(int(sample.shape[0]))
        return forward(sample, *args, **kwargs)

    unet.forward = counting
    yield calls
    del unet.forward  # back to the class's forward


def diffusion_session(folder, tiny, **render) -> object:
    """Two noises, each keying a generated track with its own OutpaintInpaint (other seeds and
    core fractions: per-clip settings that still batch together)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_stem(folder, "street.wav", rhythmic_noise(1.0, seed=1))
    write_stem(folder, "kitchen.wav", rhythmic_noise(1.3, seed=2))
    gen = {"type": "OutpaintInpaint", "model": tiny, "prompt": "lofi", **FAST}
    manifest = {
        "session": {"sample_rate": SR},
        "master": {"target_lufs": -18.0},
        "tracks": [
            {"name": "street", "file": "street.wav", "role": "noise"},
            {"name": "kitchen", "file": "kitchen.wav", "role": "noise"},
            {"name": "street_music", "key": "street", "role": "music",
             "generator": {**gen, "seed": 3, "fraction": 0.15}},
            {"name": "kitchen_music", "key": "kitchen", "role": "music", "gain_db": -3.0,
             "generator": {**gen, "seed": 4, "fraction": 0.2},
             "chain": {"type": "Chain", "plugins": [
                 {"type": "pedalboard.HighpassFilter", "cutoff_frequency_hz": 100.0}]}},
        ],
    }
    if render:
        manifest["render"] = render
    return write_session(folder, manifest)


def test_batched_render_equals_track_by_track(tmp_path, tiny, unet_calls):
    path = diffusion_session(tmp_path / "s", tiny)
    alone = render_session(path, tmp_path / "alone", progress=False, device="cpu",
                           batch_tracks=False, figure=False)
    calls_alone = list(unet_calls)
    unet_calls.clear()
    together = render_session(path, tmp_path / "together", progress=False, device="cpu",
                              figure=False)
    calls_together = list(unet_calls)
    # one window per clip: each model call now carries both tracks' windows
    assert calls_alone and set(calls_alone) == {1}
    assert set(calls_together) == {2}
    assert len(calls_together) * 2 == len(calls_alone)
    for name in ("street_music", "kitchen_music"):
        a, _ = read_audio(alone.stems[name])
        b, _ = read_audio(together.stems[name])
        assert_same_music(b, a)
    mix_a, _ = read_audio(alone.mix)
    mix_b, _ = read_audio(together.mix)
    assert_same_music(mix_b, mix_a)
    assert together.report["master"]["output_lufs"] == pytest.approx(
        alone.report["master"]["output_lufs"], abs=0.01)


def test_batch_size_chunks_windows_and_cache_skips_generation(tmp_path, tiny, unet_calls):
    path = diffusion_session(tmp_path / "s", tiny, batch_size=1)
    assert load_session(path).batch_size == 1
    first = render_session(path, tmp_path / "out", progress=False, device="cpu", figure=False)
    assert unet_calls and set(unet_calls) == {1}  # [render] batch_size = 1: one window a call
    unet_calls.clear()
    again = render_session(path, tmp_path / "out", progress=False, device="cpu", figure=False)
    assert unet_calls == [] and all(t.cached for t in again.tracks)
    a, _ = read_audio(first.stems["street_music"])
    b, _ = read_audio(again.stems["street_music"])
    np.testing.assert_array_equal(a, b)


def test_generate_batched_equals_process(tiny, unet_calls):
    a = OutpaintInpaint(model=tiny, seed=5, progress=False, device="cpu", **FAST)
    b = OutpaintInpaint(model=tiny, seed=6, fraction=0.3, progress=False, device="cpu", **FAST)
    # windows batch when they have the same width (same-length clips here; in a session every
    # track has the session's length)
    x, y = rhythmic_noise(0.8, seed=3), rhythmic_noise(0.8, seed=4)
    ya, yb = generate_batched([(a, x), (b, y)], SR, batch_size=8)
    assert set(unet_calls) == {2}
    images_b = b.last_images["music"].pixels.astype(int)
    assert_same_music(ya, a(x, SR))
    assert_same_music(yb, b(y, SR))
    assert np.abs(images_b - b.last_images["music"].pixels).max() <= 1
    # a primed generator returns its music for exactly that input, once
    a.prime(x, SR, ya)
    unet_calls.clear()
    np.testing.assert_array_equal(a(x, SR), ya)
    assert unet_calls == []
    a(x, SR)
    assert unet_calls  # used up: generates again


def test_batching_errors(tmp_path, tiny):
    a = OutpaintInpaint(model=tiny, progress=False, device="cpu", **FAST)
    x = rhythmic_noise(0.5)
    with pytest.raises(ParameterError, match="once"):
        generate_batched([(a, x), (a, x)], SR)
    with pytest.raises(ParameterError, match="batch_size"):
        generate_batched([(a, x)], SR, batch_size=0)
    with pytest.raises(SessionError, match="render.batch_size"):
        load_session(diffusion_session(tmp_path / "bad", tiny, batch_size=0))
    with pytest.raises(SessionError, match="batch_size"):
        render_session(diffusion_session(tmp_path / "s", tiny), tmp_path / "out", batch_size=0)


def test_cli_batch_size(tmp_path, tiny, unet_calls, capsys):
    from blendfx.render.cli import EXIT_OK, EXIT_USAGE, main

    path = str(diffusion_session(tmp_path / "s", tiny))
    out = str(tmp_path / "out")
    assert main(["render", path, "-o", out, "-q", "--device", "cpu", "--batch-size", "1"]) == EXIT_OK
    assert unet_calls and set(unet_calls) == {1}
    assert main(["render", path, "-o", out, "-q", "--batch-size", "0"]) == EXIT_USAGE
    assert "batch_size" in capsys.readouterr().err


def test_blend_generator_is_batched_too(tmp_path, tiny, unet_calls):
    """A Blend hands its input to its generator: tracks whose chain starts with a Blend around
    a diffusion generator share model calls as well."""
    path = diffusion_session(tmp_path / "s", tiny)
    session = load_session(path)
    for t in session.tracks[2:]:
        gen = dict(t.generator)
        t.generator = None
        t.chain = {"type": "Blend", "output": "music", "generator": gen}
        t.chain_source = "inline"
    render_session(session, tmp_path / "out", progress=False, device="cpu", figure=False)
    assert set(unet_calls) == {2}
