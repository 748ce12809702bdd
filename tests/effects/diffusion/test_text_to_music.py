"""TextToMusic on a tiny AudioLDM 2 pipeline built by the tests (no hub), and its joins at cuts.

The tiny pipeline has random weights: its music is noise, but it is loaded through blendfx's
own model handle from a ``save_pretrained`` folder and runs diffusers' real AudioLDM2Pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from blendfx import ModelNotFoundError, ParameterError  # noqa: E402
from blendfx.effects import MaskedImg2Img, TextToMusic  # noqa: E402
from blendfx.effects.diffusion.audio_model import TextToMusicModel, generate_hidden_states  # noqa: E402
from blendfx.effects.diffusion.models import (  # noqa: E402
    DEFAULT_TEXT_TO_MUSIC_ID,
    TEXT_TO_MUSIC_ENV,
    load_model,
    resolve_model_spec,
)
from blendfx.effects.diffusion.text_to_music import plan_parts  # noqa: E402
from blendfx.presets import load_preset, save_preset  # noqa: E402

from .test_diffusion import _one_thread  # noqa: E402, F401 - the autouse fixture: one torch thread
from .tiny_audioldm2 import tiny_audioldm2_folder  # noqa: E402
from .tiny_diffusion import tiny_model_folder  # noqa: E402

SR = 44100
FAST = dict(steps=2, progress=False, device="cpu")


@pytest.fixture(scope="module")
def tiny() -> str:
    return tiny_audioldm2_folder()


def test_loaded_by_path_through_the_shared_handle(tiny, monkeypatch):
    model = load_model(tiny, device="cpu")
    assert isinstance(model, TextToMusicModel) and load_model(tiny, device="cpu") is model
    assert model.sample_rate == 16000 and model.seconds_per_frame == pytest.approx(80 / 16000)
    calls = []
    generate = TextToMusicModel.generate

    def spy(self, prompts, seconds, **kw):
        calls.append((list(prompts), seconds))
        return generate(self, prompts, seconds, **kw)

    monkeypatch.setattr(TextToMusicModel, "generate", spy)
    x = np.zeros((2, int(4.0 * SR)), np.float32)
    shots = TextToMusic(model=tiny, prompts=[(0.0, 1.5, "dark calm"), (1.5, 4.0, "bright energetic")],
                        cuts=[1.5], seed=3, **FAST)
    y = shots(x, SR)
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0
    assert np.array_equal(y[0], y[1])  # the model's mono on both channels
    seen = [p for batch, _ in calls for p in batch]
    assert sorted(seen) == ["bright energetic", "dark calm"]  # one part per shot, on its prompt
    assert max(s for _, s in calls) == pytest.approx(2.5)  # the longer shot, no fade after the last
    np.testing.assert_array_equal(shots(x, SR), y)  # same seed, same music
    other = TextToMusic(model=tiny, prompts=shots.prompts, cuts=[1.5], seed=4, **FAST)
    assert not np.allclose(other(x, SR), y)
    mono = TextToMusic(model=tiny, **FAST)(np.zeros(int(0.7 * 22050), np.float32), 22050)
    assert mono.shape == (int(0.7 * 22050),)


def test_language_model_loop_equals_recomputing_without_a_cache(tiny):
    lm = load_model(tiny, device="cpu").pipe.language_model
    x = torch.randn(2, 5, lm.config.n_embd, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 5, dtype=torch.long)
    with torch.inference_mode():
        got = generate_hidden_states(lm, x, 4, attention_mask=mask)
        seq = x
        for _ in range(4):
            h = lm(inputs_embeds=seq, output_hidden_states=True, return_dict=True).hidden_states[-1]
            seq = torch.cat([seq, h[:, -1:]], dim=1)
    assert got.shape == (2, 4, lm.config.n_embd)
    torch.testing.assert_close(got, seq[:, -4:], atol=1e-5, rtol=1e-4)


class _Tones:
    """A stand-in model: each prompt is a sine at its own frequency (to see where parts land)."""

    sample_rate = 16000
    name = "<tones>"

    def __init__(self, freqs):
        self.freqs = freqs

    def generate(self, prompts, seconds, **_):
        t = np.arange(int(round(seconds * self.sample_rate))) / self.sample_rate
        return np.stack([0.5 * np.sin(2 * np.pi * self.freqs[p] * t) for p in prompts]).astype(np.float32)


def _level(x, f, sr):
    t = np.arange(x.size) / sr
    return 2 * abs(np.mean(x * np.exp(-2j * np.pi * f * t)))


def test_parts_join_at_the_cuts():
    parts = plan_parts(25.0, "p", ((0.0, 3.0, "a"), (3.0, 25.0, "b")), [3.0, 3.1, 24.9], segment_s=10.0,
                       join_s=0.1, overlap_s=1.0)
    # the cut at 3.0 s is a join; 3.1 s (too close) and 24.9 s (too near the end) are not;
    # the 22 s shot is split into three equal parts with 1 s overlaps
    assert [round(p.start_s, 3) for p in parts] == [0.0, 3.0, 10.333, 17.667]
    assert [p.fade_s for p in parts] == [0.1, 1.0, 1.0, 0.0]
    assert [p.text for p in parts] == ["a", "b", "b", "b"]
    gen = TextToMusic(prompts=[(0.0, 2.0, "low"), (2.0, 5.0, "high")], cuts=[2.0], join_s=0.1, **FAST)
    gen.use_model(_Tones({"low": 220.0, "high": 880.0}))
    sr = 16000
    y = gen(np.zeros(5 * sr, np.float32), sr)
    before, after = y[int(1.5 * sr):int(1.99 * sr)], y[int(2.1 * sr):int(2.6 * sr)]
    assert _level(before, 220, sr) > 0.4 and _level(before, 880, sr) < 0.01  # up to the cut: shot 1
    assert _level(after, 880, sr) > 0.4 and _level(after, 220, sr) < 0.01  # from cut + join_s: shot 2
    fade = y[int(2.0 * sr):int(2.1 * sr)]
    assert _level(fade, 880, sr) > 0.1 and _level(fade, 220, sr) > 0.1  # the 0.1 s crossfade
    with pytest.raises(ParameterError, match="cuts"):
        TextToMusic(cuts=[-1.0])


def test_missing_model_and_wrong_model_are_clear_errors(tmp_path, monkeypatch, tiny):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv(TEXT_TO_MUSIC_ENV, raising=False)
    monkeypatch.delenv("BLENDFX_ALLOW_DOWNLOAD", raising=False)
    assert resolve_model_spec("", "text2music") == (DEFAULT_TEXT_TO_MUSIC_ID, False)
    with pytest.raises(ModelNotFoundError) as err:
        TextToMusic(**FAST)(np.zeros(SR, np.float32), SR)
    msg = str(err.value)
    assert DEFAULT_TEXT_TO_MUSIC_ID in msg and "AudioLDM2Pipeline" in msg and "downloads are off" in msg
    with pytest.raises(ModelNotFoundError, match="no-such-folder"):
        TextToMusic(model=str(tmp_path / "no-such-folder"), **FAST)(np.zeros(SR, np.float32), SR)
    with pytest.raises(ParameterError, match="needs an AudioLDM2Pipeline"):
        TextToMusic(model=tiny_model_folder(), **FAST)(np.zeros(SR, np.float32), SR)
    with pytest.raises(ParameterError, match="runs in TextToMusic"):
        MaskedImg2Img(model=tiny, steps=2, progress=False, device="cpu")(np.ones(SR, np.float32), SR)


def test_preset_round_trip(tmp_path, tiny):
    effect = TextToMusic(prompt="slow strings", steps=50, guidance=2.5, model=tiny, segment_s=8.0)
    assert load_preset(save_preset(effect, tmp_path / "t2m.toml")) == effect
