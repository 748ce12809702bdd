"""Chain and Mix: list behaviour, native plugin grouping, nesting, sidechains."""

from __future__ import annotations

import blendfx
import numpy as np
import pedalboard
import pytest
from blendfx import Chain, Mix, ParameterError
from blendfx.effects import Ducker, Utility

SR = 44100


def noise(n=SR // 2, ch=2, seed=0):
    return (np.random.default_rng(seed).standard_normal((ch, n)) * 0.1).astype(np.float32)


def test_list_behaviour():
    a, b, c = Utility(gain_db=-1), pedalboard.Gain(-2), Utility(gain_db=-3)
    chain = Chain([a, b])
    assert len(chain) == 2 and chain[0] is a and chain[-1] is b
    chain.append(c)
    chain.insert(0, pedalboard.HighpassFilter(50))
    assert [type(p).__name__ for p in chain] == ["HighpassFilter", "Utility", "Gain", "Utility"]
    chain[1] = Utility(gain_db=-4)
    del chain[0]
    chain.remove(c)
    assert len(chain) == 2 and chain[0].gain_db == -4
    with pytest.raises(ParameterError, match="not str"):
        chain.append("reverb")
    with pytest.raises(ParameterError):
        Chain([object()])


def test_chain_equals_manual_composition():
    x = noise()
    hp, rev = pedalboard.HighpassFilter(120), pedalboard.Reverb(room_size=0.3)
    chain = Chain([hp, rev, Utility(gain_db=-6)])
    manual = pedalboard.Pedalboard([pedalboard.HighpassFilter(120),
                                    pedalboard.Reverb(room_size=0.3)])(x, SR)
    manual = manual * 10 ** (-6 / 20)
    np.testing.assert_allclose(chain(x, SR), manual, atol=1e-6)


def test_nested_chain_and_mix():
    x = noise()
    mix = Mix([Utility(gain_db=-6), Chain([pedalboard.Gain(-6), Utility(invert=True)])])
    out = Chain([mix, Utility(gain_db=0)])(x, SR)
    np.testing.assert_allclose(out, np.zeros_like(x), atol=1e-6)  # the branches cancel


def test_mix_spreads_mono_and_pads():
    x = noise(ch=1)
    out = Mix([Utility(pan=-1.0), Utility()])(x, SR)
    assert out.shape == (2, x.shape[1])
    # hard left: sqrt(2) cos(0) on the left (the law is 0 dB at centre), sin(0) = 0 on the
    # right; the centred mono branch is spread to both sides at unity
    np.testing.assert_allclose(out[0], (1 + np.sqrt(2)) * x[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], x[0], rtol=1e-5, atol=1e-6)


def test_chain_hands_its_input_to_sidechain_effects():
    music = noise(seed=1)
    key = np.zeros_like(music)
    key[:, : SR // 4] = 0.9  # loud key in the first half
    direct = Ducker(depth_db=20)(music, SR, sidechain=key)
    via_chain = Chain([Utility(), Ducker(depth_db=20)])(music, SR, sidechain=key)
    np.testing.assert_allclose(via_chain, direct, atol=1e-6)
    # With no sidechain given, the chain's own input keys the ducker.
    self_keyed = Chain([Ducker(depth_db=20)])(key + music * 0.01, SR)
    assert np.abs(self_keyed[:, 4410 : SR // 4]).max() < 0.2  # after the 10 ms attack


def test_named_sidechain_keys():
    music = noise(seed=2)
    chain = Chain([Ducker(depth_db=20, sidechain_key="voice")])
    quiet = np.zeros_like(music)
    loud = np.full_like(music, 0.9)
    a = chain(music, SR, sidechain={"voice": quiet})
    b = chain(music, SR, sidechain={"voice": loud})
    assert np.abs(b[:, 4410:]).max() < np.abs(a[:, 4410:]).max() / 5  # past the attack
    with pytest.raises(ParameterError, match="'voice' is not among"):
        chain(music, SR, sidechain={"other": loud})


def test_missing_required_sidechain():
    with pytest.raises(ParameterError, match="needs a sidechain"):
        Ducker()(noise(), SR)


def test_streaming_chain_with_natives():
    x = noise(n=SR)
    chain = Chain([pedalboard.LowpassFilter(2000), Utility(gain_db=-3), pedalboard.Gain(1)])
    whole = chain(x, SR)
    parts = [chain(x[:, i:i + 5000], SR, reset=(i == 0)) for i in range(0, x.shape[1], 5000)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-5)


def test_parameters_validate():
    with pytest.raises(ParameterError, match=r"Utility.gain_db = 99.*out of range \[-96, 24\] dB"):
        Utility(gain_db=99)
    u = Utility()
    with pytest.raises(ParameterError, match="must be true or false"):
        u.mono = "yes"
    with pytest.raises(ParameterError, match="no parameter 'gain'"):
        u.gain = 3


def test_bad_sample_rate():
    with pytest.raises(ParameterError, match="sample_rate"):
        Utility()(noise(), 0)


def test_registry_has_builtins():
    assert {"Chain", "Mix", "Utility", "Ducker", "MaskExtractor"} <= set(blendfx.EFFECT_REGISTRY)
