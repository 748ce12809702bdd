"""Property-based tests (hypothesis, issue 23): whatever a user hands blendfx, it answers with
a result or one of its documented errors (:class:`blendfx.BlendfxError`), never another
exception, never NaN or infinite samples, and never a file left behind by a failed call.

Fed to: every registered effect (built as the conformance suite builds them), random Chains
and Mixes, the preset and session loaders, and the REAPER importer, with random shapes,
dtypes, lengths (0, 1, odd), sample rates (in and out of range), NaN/Inf, huge and tiny
values, random TOML and random text. Example counts are kept small for the slow effects so
the whole module runs in about a minute (``--hypothesis-show-statistics`` prints them).
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import blendfx
import numpy as np
import pytest
import tomli_w
from blendfx.errors import BlendfxError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..effects.conformance_factories import FACTORIES

#: Effects that take a second or more per call: a few examples each.
SLOW = {"Blend", "Composer", "MaskedImg2Img", "OutpaintInpaint", "Stylizer",
        "MusicNoiseSegmenter", "TextToMusic"}

RATES = st.sampled_from([44100.0, 48000.0, 22050.0, 8000.0, 384000.0, 11025.5,
                         7999.0, 384001.0, 0.0, -44100.0, 1.0, 1e9, math.nan, math.inf])
DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.int32, np.uint8,
                          np.int8])
VALUES = st.sampled_from(["audio", "audio", "audio", "silence", "tiny", "hot", "huge", "nan",
                          "inf", "dc", "full"])


def _names() -> list[str]:
    return sorted(blendfx.EFFECT_REGISTRY)


def _effect(name: str):
    return FACTORIES.get(name, blendfx.EFFECT_REGISTRY[name])()


@st.composite
def audio(draw, max_len: int = 6000) -> np.ndarray:
    """Random audio: 1-D or 2-D in either orientation, 1-3 channels, lengths 0, 1, 2, odd...,
    any of several dtypes, and values from plain audio to NaN, Inf, 1e30 and 1e-30."""
    n = draw(st.one_of(st.sampled_from([0, 1, 2, 3, 7, 64, 441]),
                       st.integers(0, max_len)))
    channels = draw(st.integers(1, 3))
    kind = draw(VALUES)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = 0.3 * rng.standard_normal((channels, n))
    if kind == "silence":
        x[:] = 0.0
    elif kind == "tiny":
        x *= 1e-30
    elif kind == "hot":  # +60 dBFS: still taken
        x *= 1e3
    elif kind == "huge":  # refused (over 1e4), never overflowing inside
        x *= draw(st.sampled_from([1e5, 1e30, 1e300]))
    elif kind == "dc":
        x[:] = 0.5
    elif kind == "full":
        x = np.sign(x) + (x == 0)
    elif kind in ("nan", "inf") and n:
        x[draw(st.integers(0, channels - 1)), draw(st.integers(0, n - 1))] = \
            np.nan if kind == "nan" else -np.inf
    dtype = draw(DTYPES)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        x = np.clip(np.nan_to_num(x, posinf=1.0, neginf=-1.0), -1, 1) * info.max
        x = (x + (128 if dtype is np.uint8 else 0)).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            x = x.astype(dtype)
    layout = draw(st.sampled_from(["first", "last", "mono"]))
    if layout == "mono" or channels == 1 and draw(st.booleans()):
        return x[0]
    return x if layout == "first" else x.T


def _check_output(out: np.ndarray, x: np.ndarray) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert np.isfinite(out).all(), "NaN or infinite samples out"


def _process(effect, x, sr, sc) -> None:
    kw = {"sidechain": sc} if getattr(effect, "uses_sidechain", False) else {}
    try:
        out = effect.process(x, sr, **kw)
    except BlendfxError:
        return  # a documented error: fine
    _check_output(out, x)


_EFFECTS: dict[str, object] = {}


def _built(name: str):
    """One instance per effect for the whole module (building the diffusion ones loads a model)."""
    if name not in _EFFECTS:
        _EFFECTS[name] = _effect(name)
    return _EFFECTS[name]


FAST_SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
SLOW_SETTINGS = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", [n for n in _names() if n not in SLOW])
@FAST_SETTINGS
@given(x=audio(), sr=RATES, sc=st.one_of(st.none(), audio()))
def test_every_fast_effect_answers_any_input(name, x, sr, sc):
    _process(_built(name), x, sr, sc)


@pytest.mark.parametrize("name", [n for n in _names() if n in SLOW])
@SLOW_SETTINGS
@given(x=audio(max_len=3000), sr=RATES, sc=st.one_of(st.none(), audio(max_len=3000)))
def test_every_slow_effect_answers_any_input(name, x, sr, sc):
    _process(_built(name), x, sr, sc)


PROCESSORS = {
    "Utility": lambda d: blendfx.EFFECT_REGISTRY["Utility"](
        gain_db=d.draw(st.floats(-96, 24)), pan=d.draw(st.floats(-1, 1)),
        invert=d.draw(st.booleans()), mono=d.draw(st.booleans())),
    "Ducker": lambda d: blendfx.EFFECT_REGISTRY["Ducker"](
        depth_db=d.draw(st.floats(0, 40)), ratio_db_per_db=d.draw(st.floats(0.1, 10))),
    "pedalboard.Gain": lambda d: __import__("pedalboard").Gain(d.draw(st.floats(-40, 12))),
    "pedalboard.LowpassFilter": lambda d: __import__("pedalboard").LowpassFilter(
        d.draw(st.floats(50, 3900))),
}


@st.composite
def processor(draw, depth: int = 0):
    """A random Chain or Mix (the top level), nesting Chains, Mixes, blendfx effects and
    pedalboard plugins."""
    kinds = ["Chain", "Mix"] if depth == 0 else ["Chain", "Mix", *PROCESSORS] if depth < 2 \
        else list(PROCESSORS)
    kind = draw(st.sampled_from(kinds))
    if kind in ("Chain", "Mix"):
        items = draw(st.lists(processor(depth + 1), max_size=3))
        return blendfx.EFFECT_REGISTRY[kind](items)
    return PROCESSORS[kind](_Drawer(draw))


class _Drawer:
    def __init__(self, draw):
        self.draw = draw


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(proc=processor(), x=audio(), sr=RATES, sc=st.one_of(st.none(), audio()))
def test_random_chains_and_mixes(proc, x, sr, sc):
    try:
        out = proc.process(x, sr, sidechain=sc)
    except BlendfxError:
        return
    _check_output(out, x)


# -- loaders ------------------------------------------------------------------------------------
TOML_SCALARS = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=12), st.sampled_from(["Chain", "Utility", "Blend",
                                                                "pedalboard.Reverb", "noise",
                                                                "a.wav", "../x.wav", "/etc/x"]))
KEYS = st.sampled_from(["type", "plugins", "gain_db", "pan", "name", "chain", "preset", "file",
                        "role", "session", "tracks", "master", "render", "sample_rate", "tempo",
                        "key", "sidechain", "generator", "offset", "length", "format",
                        "bit_depth", "media_roots", "seed", "x", "room_size"])
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25)
TOML_DOCS = st.dictionaries(KEYS, TOML_VALUES, max_size=6)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _toml_text(draw_doc, raw: str, use_raw: bool, deep: int = 0) -> str:
    """The document as TOML (or the raw text); ``deep`` > 0 adds an array nested that deep."""
    if deep:
        return (_toml_text(draw_doc, raw, use_raw) + "\n" if not use_raw else "") + \
            "zz = " + "[" * deep + "]" * deep + "\n"
    if use_raw:
        return raw
    try:
        return tomli_w.dumps(draw_doc)
    except (TypeError, ValueError):
        return raw


#: Nesting depth of an extra array in a TOML document: mostly none, sometimes past the limit.
DEEP = st.sampled_from([0, 0, 0, 0, 5, 60, 3000])

PROPS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))


@PROPS
@given(doc=TOML_DOCS, raw=st.text(max_size=200), use_raw=st.booleans(),
       chain=st.dictionaries(KEYS, TOML_VALUES, max_size=5), deep=DEEP)
def test_preset_loader_answers_any_file(tmp_path_factory, doc, raw, use_raw, chain, deep):
    from blendfx.presets import load_preset

    folder = tmp_path_factory.mktemp("preset")
    if not use_raw:
        doc = {**doc, "chain": {"type": "Chain", **chain}}
    path = folder / "p.toml"
    path.write_text(_toml_text(doc, raw, use_raw, deep), encoding="utf-8")
    before = _files(folder)
    try:
        load_preset(path)
    except BlendfxError:
        pass
    assert _files(folder) == before


@PROPS
@given(doc=TOML_DOCS, raw=st.text(max_size=200), use_raw=st.booleans(),
       tracks=st.lists(st.dictionaries(KEYS, TOML_VALUES, max_size=6), max_size=3),
       session=st.dictionaries(KEYS, TOML_VALUES, max_size=4), deep=DEEP)
def test_session_loader_answers_any_file(tmp_path_factory, doc, raw, use_raw, tracks, session,
                                         deep):
    from blendfx.render.session import load_session

    folder = tmp_path_factory.mktemp("session")
    if not use_raw:
        doc = {**doc, "session": session, "tracks": tracks}
    path = folder / "s.toml"
    path.write_text(_toml_text(doc, raw, use_raw, deep), encoding="utf-8")
    before = _files(folder)
    try:
        s = load_session(path, check_files=False)
        s.render_order()
        for t in s.tracks:
            t.build_chain()
    except BlendfxError:
        pass
    assert _files(folder) == before


RPP_LINES = st.one_of(
    st.sampled_from(["<TRACK", ">", "<ITEM", "<SOURCE WAVE", "<SOURCE MIDI", "<SOURCE SECTION",
                     'FILE "a.wav"', "FILE ../b.wav", 'FILE "C:\\\\x\\\\c.wav"', "FILE",
                     "POSITION 1.5", "POSITION -3", "POSITION nan", "LENGTH 1e308",
                     "PLAYRATE 0.99999999999978 1 0", "PLAYRATE 2", "VOLPAN 0 0",
                     "VOLPAN 1e400 -5", "MUTESOLO 1 0 0", "MUTESOLO 0 1 0", "NAME x",
                     'NAME "a b"', "NAME", "TEMPO 120 4 4", "TEMPO 0 0 0", "TEMPO -1",
                     "SAMPLERATE 1 0 0", "SAMPLERATE 1e12", "SOFFS 5", "FADEIN 1 0.5",
                     "ISBUS 1 1", "<TEMPOENVEX", "PT 0 120", "PT nan nan", "<FXCHAIN",
                     "RECORD_PATH media", "<NOTES", "|text", "`q`", "'"]),
    st.text(alphabet=string.printable, max_size=30))


@PROPS
@given(lines=st.lists(RPP_LINES, max_size=40), header=st.booleans())
def test_reaper_importer_answers_any_project(tmp_path_factory, lines, header):
    from blendfx.render.reaper import import_reaper
    from blendfx.render.session import load_session

    folder = tmp_path_factory.mktemp("rpp")
    text = ("<REAPER_PROJECT 0.1 \"6.0\" 1\n" if header else "") + "\n".join(lines) + \
        ("\n>\n" if header else "\n")
    (folder / "p.rpp").write_text(text, encoding="utf-8")
    before = _files(folder)
    out = folder / "s.toml"
    try:
        result = import_reaper(folder / "p.rpp", out)
    except BlendfxError:
        assert _files(folder) == before  # nothing written on error
        return
    assert out.is_file()
    if result.tracks:  # what the importer writes, the session loader reads
        load_session(out, check_files=False)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300))
def test_audio_reader_answers_any_bytes(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("bytes")
    for name in ("x.wav", "x.flac"):
        path = folder / name
        path.write_bytes(data)
        try:
            audio_out, _ = blendfx.read_audio(path)
        except BlendfxError:
            continue
        assert np.isfinite(audio_out).all()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
       sr=RATES, depth=st.sampled_from([16, 24, 32, 8]), suffix=st.sampled_from([".wav", ".flac",
                                                                               ".mp3"]))
def test_write_audio_writes_whole_files_or_nothing(tmp_path_factory, x, sr, depth, suffix):
    folder = tmp_path_factory.mktemp("write")
    path = folder / f"o{suffix}"
    try:
        blendfx.write_audio(path, x, sr, bit_depth=depth)
    except BlendfxError:
        assert _files(folder) == set()
        return
    assume(True)
    back, rate = blendfx.read_audio(path)
    assert np.isfinite(back).all() and rate == pytest.approx(float(sr), rel=1e-6)
