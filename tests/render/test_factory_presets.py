"""Every factory preset loads, is documented, and renders a short session."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import read_audio
from blendfx.effect import EFFECT_REGISTRY
from blendfx.presets import factory_preset_path, list_factory_presets, load_preset, read_preset
from blendfx.render.demo import synthesize_train
from blendfx.render.renderer import render_session

from ..conftest import shared
from ..sessionkit import tone, write_session, write_stem

PRESETS = list_factory_presets()


def _types(d):
    if isinstance(d, dict):
        if isinstance(d.get("type"), str):
            yield d["type"]
        for v in d.values():
            yield from _types(v)
    elif isinstance(d, list):
        for v in d:
            yield from _types(v)


def _missing(name):
    return sorted({t for t in _types(read_preset(name)["chain"])
                   if not t.startswith("pedalboard.") and t not in EFFECT_REGISTRY})


def test_enough_documented_presets():
    assert len(PRESETS) >= 9 and "default" in PRESETS
    for name in PRESETS:
        text = factory_preset_path(name).read_text()
        first = text.splitlines()[0]
        assert first.startswith(f"# {name}: ") and len(first) > len(name) + 20, name
        meta = read_preset(name)["preset"]
        assert meta["name"] == name and meta["description"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_renders(name, tmp_path):
    assert not _missing(name), f"{name} names effects that are not registered"
    assert load_preset(name) is not None
    folder = tmp_path / "s"
    folder.mkdir()
    sr = 44100
    if name in ("street-stylize", "music-under-voice"):  # a real place / a real voice-ish key
        noise, _ = read_audio(shared("noise", "esc10", "chainsaw", "1-19898-A.ogg"), sr,
                              duration=3.0)
    else:  # the demo's train: a steady pulse and a hum for the composer to lock on to
        noise = synthesize_train(3.0, sr, seed=5)
    write_stem(folder, "noise.wav", noise)
    write_stem(folder, "stem.wav", tone(330, 3.0, seed=4))
    tracks = [{"name": "noise", "file": "noise.wav", "role": "noise"}]
    if name == "street-stylize":  # restyle a stem with the noise recording as the place
        tracks.append({"name": "stem", "file": "stem.wav", "role": "voice", "preset": name,
                       "sidechain": "noise"})
    elif name == "music-under-voice":  # the tone ducks under the "voice" (the noise clip)
        tracks.append({"name": "stem", "file": "stem.wav", "role": "music", "preset": name,
                       "sidechain": "noise"})
    else:  # a Blend preset: music written for the noise, on its own track
        tracks.append({"name": "stem", "key": "noise", "role": "music", "preset": name})
    path = write_session(folder, {"session": {"seed": 1}, "tracks": tracks})
    r = render_session(path, tmp_path / "out", progress=False, figure=False)
    stem, _ = read_audio(r.stems["stem"])
    assert stem.shape == (2, 3 * sr) and np.isfinite(stem).all()
    assert np.sqrt(np.mean(stem ** 2)) > 1e-4  # not silent
    mix, _ = read_audio(r.mix)
    assert np.abs(mix).max() < 1.0
    if any(t == "Blend" for t in _types(read_preset(name)["chain"])):
        report = r.report["tracks"][1]
        assert 0.0 <= report["unmasked_fraction"] <= 1.0
