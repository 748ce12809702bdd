"""Chain/Mix where pedalboard's users expect pedalboard: None slots, TypeErrors, repr (issue 21)."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from blendfx import BlendfxError, Chain, Mix, ParameterError, ParameterTypeError
from blendfx.effects import Utility

SR = 44100


def noise(n=2000, ch=2, seed=0):
    return (np.random.default_rng(seed).standard_normal((ch, n)) * 0.1).astype(np.float32)


# -- None: an empty slot --------------------------------------------------------------------------
def test_none_slot_passes_audio_through():
    x = noise()
    np.testing.assert_array_equal(Chain([None])(x, SR), x)
    np.testing.assert_array_equal(Chain([None, None])(x.T, SR), x.T)


def test_none_between_plugins_changes_nothing():
    x = noise(seed=1)
    rev, hp = pedalboard.Reverb(room_size=0.4), pedalboard.HighpassFilter(300)
    u = Utility(gain_db=-5)
    expected = Chain([rev, hp, u])(x, SR)
    np.testing.assert_array_equal(Chain([rev, None, hp, None, u, None])(x, SR), expected)


def test_none_in_list_operations():
    chain = Chain([pedalboard.Gain(-6), Utility()])
    chain[0] = None
    chain.insert(0, None)
    chain.append(None)
    chain[1:2] = [None, pedalboard.Gain(0)]
    assert [type(p).__name__ for p in chain] == ["NoneType", "NoneType", "Gain", "Utility", "NoneType"]
    assert None in chain and chain.count(None) == 3
    chain.remove(None)
    assert len(chain) == 4
    x = noise(seed=2)
    np.testing.assert_allclose(chain(x, SR), x, atol=1e-7)  # Gain(0) and Utility() are unity


def test_none_branch_of_a_mix_is_the_dry_signal():
    x = noise(seed=3)
    gain = pedalboard.Gain(-6)
    ours = Mix([None, gain])(x, SR)
    theirs = pedalboard.Mix([None, pedalboard.Gain(-6)])(x, SR)
    np.testing.assert_allclose(ours, theirs, atol=1e-7)
    np.testing.assert_allclose(ours, x + gain(x, SR), atol=1e-7)


def test_a_container_given_as_the_list_gives_its_plugins():
    # pedalboard reads any sequence of plugins, a container too: Pedalboard(Mix([a, b]))
    a, b = pedalboard.Gain(-1), Utility(gain_db=-2)
    assert Chain(Mix([a, b])).plugins == [a, b]
    assert Mix(pedalboard.Pedalboard([a, None])).plugins == [a, None]


def test_none_in_equality_repr_and_flags():
    a, b = Chain([None, Utility(gain_db=-1)]), Chain([None, Utility(gain_db=-1)])
    assert a == b and a != Chain([Utility(gain_db=-1), None])
    assert a.supports_streaming and not a.uses_sidechain
    assert "None" in repr(a)
    a.reset()  # skips the empty slot


# -- wrong types are TypeErrors (and blendfx errors) ---------------------------------------------
WRONG_TYPES = {
    "nested list": lambda: Chain([[pedalboard.Gain()]]),
    "string plugin": lambda: Chain(["reverb"]),
    "one plugin, not a list": lambda: Chain(pedalboard.Reverb()),
    "a string for the list": lambda: Mix("reverb"),
    "append a string": lambda: Chain([]).append("not a plugin"),
    "insert a number": lambda: Mix([]).insert(0, 3),
    "set a string": lambda: Chain([None]).__setitem__(0, "reverb"),
    "set a slice to a plugin": lambda: Chain([None]).__setitem__(slice(0, 1), pedalboard.Gain()),
    "sample rate as text": lambda: Chain([pedalboard.Gain()])(noise(), "44100"),
    "sample rate None": lambda: Chain([pedalboard.Gain()])(noise(), None),
    "sample rate True": lambda: Utility()(noise(), True),
    "buffer size as text": lambda: Chain([pedalboard.Gain()])(noise(), SR, buffer_size="8"),
    "buffer size 1.5": lambda: Chain([pedalboard.Gain()])(noise(), SR, buffer_size=1.5),
    "reset as text": lambda: Utility()(noise(), SR, reset="no"),
    "text for audio": lambda: Chain([])("abc", SR),
    "objects for audio": lambda: Utility()(np.array([None, 1.0]), SR),
    "text for a float parameter": lambda: Utility(gain_db="-6"),
    "text for a bool parameter": lambda: setattr(Utility(), "mono", "yes"),
    "1.5 for an int parameter": lambda: Utility(seed=1.5),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_raise_type_errors(case):
    with pytest.raises(TypeError) as info:
        WRONG_TYPES[case]()
    assert isinstance(info.value, ParameterTypeError)
    assert isinstance(info.value, ParameterError) and isinstance(info.value, BlendfxError)


def test_pedalboard_raises_type_errors_for_the_same():
    # the reference behaviour, checked against the installed pedalboard
    board = pedalboard.Pedalboard([pedalboard.Gain()])
    for call in [lambda: pedalboard.Pedalboard([[pedalboard.Gain()]]),
                 lambda: pedalboard.Pedalboard(["reverb"]),
                 lambda: board.append("not a plugin"),
                 lambda: board(noise(), "44100"),
                 lambda: board(noise(), SR, buffer_size=1.5)]:
        with pytest.raises(TypeError):
            call()


WRONG_VALUES = {
    "sample rate 0": lambda: Utility()(noise(), 0),
    "sample rate NaN": lambda: Chain([pedalboard.Gain()])(noise(), float("nan")),
    "buffer size 0": lambda: Chain([pedalboard.Gain()])(noise(), SR, buffer_size=0),
    "square array": lambda: Chain([])(np.zeros((2, 2)), SR),
    "3-D array": lambda: Utility()(np.zeros((2, 2, 5)), SR),
    "out of range": lambda: Utility(gain_db=99),
    "NaN audio": lambda: Chain([pedalboard.Gain()])(np.full((2, 10), np.nan), SR),
}


@pytest.mark.parametrize("case", sorted(WRONG_VALUES))
def test_wrong_values_stay_value_errors(case):
    with pytest.raises(ValueError) as info:
        WRONG_VALUES[case]()
    assert isinstance(info.value, ParameterError) and not isinstance(info.value, TypeError)


def test_numbers_of_other_types_are_accepted():
    x = noise()
    ref = Utility(gain_db=-2)(x, SR)
    np.testing.assert_array_equal(Utility(gain_db=np.float32(-2))(x, np.int64(SR), np.int32(512),
                                                                 np.bool_(True)), ref)
    np.testing.assert_array_equal(Utility(gain_db=-2)(x, float(SR), reset=1), ref)


# -- repr with the plugin count, as pedalboard's ---------------------------------------------------
def test_repr_counts_plugins():
    assert repr(Mix([])) == "<Mix with 0 plugins: []>"
    one = Chain([pedalboard.Gain(-3)])
    assert repr(one).startswith("<Chain with 1 plugin: [<pedalboard.Gain gain_db=-3")
    assert repr(one).endswith("]>")
    two = Chain([Utility(gain_db=-1), None])
    assert repr(two) == f"<Chain with 2 plugins: [{Utility(gain_db=-1)!r}, None]>"
    nested = Mix([two, pedalboard.Gain()])
    assert repr(nested).startswith("<Mix with 2 plugins: [<Chain with 2 plugins: [Utility(")
    # pedalboard's wording, for comparison
    assert repr(pedalboard.Pedalboard([pedalboard.Gain()])).startswith("<Pedalboard with 1 plugin: [")
