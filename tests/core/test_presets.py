"""Presets: TOML round trips, allow-list, clear errors."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from blendfx import Chain, Mix, PresetError, load_preset, save_preset
from blendfx.effects import Ducker, Utility
from blendfx.presets import list_factory_presets, processor_to_dict
from blendfx.presets import load_preset as load_named


def sample_chain():
    return Chain([
        pedalboard.HighpassFilter(cutoff_frequency_hz=90),
        Mix([Utility(gain_db=-3, pan=0.25), Chain([pedalboard.Reverb(room_size=0.7),
                                                  Utility(invert=True)])]),
        pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.HPF12, cutoff_hz=300),
        Ducker(depth_db=9, sidechain_key="voice"),
    ])


def test_round_trip_equal(tmp_path):
    chain = sample_chain()
    path = save_preset(chain, tmp_path / "p.toml", description="test chain")
    loaded = load_preset(path)
    assert processor_to_dict(loaded) == processor_to_dict(chain)
    assert loaded == chain
    x = np.random.default_rng(0).standard_normal((2, 22050)).astype(np.float32) * 0.1
    key = {"voice": np.zeros_like(x)}
    np.testing.assert_array_equal(loaded(x, 44100, sidechain=key), chain(x, 44100, sidechain=key))
    text = path.read_text()
    assert text.startswith("# p: test chain") and 'type = "pedalboard.Reverb"' in text


def test_unknown_class(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[chain]\ntype = "Chain"\n[[chain.plugins]]\ntype = "os.system"\n')
    with pytest.raises(PresetError, match=r"chain.plugins\[0\].type = 'os.system' is not a known"):
        load_preset(p)
    p.write_text('[chain]\ntype = "pedalboard.VST3Plugin"\n')
    with pytest.raises(PresetError, match="not an allowed preset plugin"):
        load_preset(p)


def test_bad_key_and_value(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[chain]\ntype = "Chain"\n[[chain.plugins]]\ntype = "Utility"\ngain = 3\n')
    with pytest.raises(PresetError, match=r"chain.plugins\[0\].gain: Utility has no parameter"):
        load_preset(p)
    p.write_text('[chain]\ntype = "Chain"\n[[chain.plugins]]\ntype = "Utility"\ngain_db = 300\n')
    with pytest.raises(PresetError, match=r"chain.plugins\[0\].*gain_db = 300.*out of range"):
        load_preset(p)
    p.write_text('[chain]\ntype = "pedalboard.Reverb"\nroom_sise = 0.3\n')
    with pytest.raises(PresetError, match="room_sise"):
        load_preset(p)
    p.write_text("[chain\n")
    with pytest.raises(PresetError, match="not valid TOML"):
        load_preset(p)


def test_missing_file(tmp_path):
    with pytest.raises(PresetError, match="not found"):
        load_preset(tmp_path / "nope.toml")
    with pytest.raises(PresetError, match="unknown preset 'no-such-preset'"):
        load_named("no-such-preset")


def test_factory_presets_load():
    for name in list_factory_presets():  # every one loads: a renamed effect fails here
        assert load_named(name) is not None
