"""Bad input at the core (issue 23): integer PCM, sample rates, short inputs, truncated WAVs,
deeply nested TOML. Each test names the defect it guards."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx.audio_io import audio_info, read_audio, write_audio
from blendfx.buffers import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, as_float_audio, check_sample_rate
from blendfx.effect import EFFECT_REGISTRY, Effect
from blendfx.errors import AudioFileError, ParameterError, PresetError
from blendfx.files import MAX_TOML_DEPTH, nesting_depth, read_toml
from blendfx.presets import load_preset, processor_from_dict

SR = 44100


# -- integer PCM is scaled as audio libraries read it, never passed raw --------------------------
@pytest.mark.parametrize(("dtype", "value", "expected"), [
    (np.int16, 16384, 0.5), (np.int16, -32768, -1.0), (np.int32, 2**30, 0.5),
    (np.int8, -64, -0.5), (np.uint8, 192, 0.5), (np.uint8, 128, 0.0), (np.int64, 2**62, 0.5),
])
def test_integer_pcm_is_scaled(dtype, value, expected):
    x = np.full(1000, value, dtype)
    assert as_float_audio(x).dtype == np.float32
    assert as_float_audio(x)[0] == pytest.approx(expected)
    from blendfx.effects import Utility

    out = Utility()(x, SR)  # the issue: int16 16384 came out as 16384.0 (+84 dBFS)
    assert out.dtype == np.float32 and np.max(np.abs(out)) <= 1.0
    assert out[0] == pytest.approx(expected)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.bool_, np.complex64, object])
def test_non_audio_dtypes_are_refused(dtype):
    from blendfx.effects import Utility

    with pytest.raises(ParameterError, match="dtype"):
        Utility()(np.zeros(100, dtype), SR)


def test_write_audio_scales_int16_like_float(tmp_path):
    pcm = (np.sin(np.arange(4410) / 7.0) * 16384).astype(np.int16)
    write_audio(tmp_path / "a.wav", pcm, SR, bit_depth=16)
    back, _ = read_audio(tmp_path / "a.wav", mono=True)
    np.testing.assert_allclose(back, pcm / 32768.0, atol=1e-4)


# -- one sample-rate range everywhere -------------------------------------------------------------
@pytest.mark.parametrize("sr", [1, 7999.9, 384000.5, 1e9, 0, -44100, float("nan"), float("inf"),
                                "fast", None, True])
def test_sample_rate_out_of_range_is_refused_by_every_entry_point(sr, tmp_path):
    from blendfx.effects import MaskExtractor, Utility

    with pytest.raises(ParameterError, match="sample_rate"):
        check_sample_rate(sr)
    x = np.zeros(1000, np.float32)
    for effect in (Utility(), MaskExtractor()):  # the issue: MaskExtractor at 1e9 Hz ran 40 s
        with pytest.raises(ParameterError):
            effect(x, sr)
    with pytest.raises(ParameterError):
        write_audio(tmp_path / "x.wav", x, sr)


def test_sample_rate_range_edges_are_accepted():
    assert check_sample_rate(MIN_SAMPLE_RATE) == 8000.0
    assert check_sample_rate(MAX_SAMPLE_RATE) == 384000.0
    assert check_sample_rate(np.float32(48000)) == 48000.0


def test_blend_at_one_hz_is_refused_at_once():
    from blendfx.effects import Blend

    # the issue: Blend()(audio, sample_rate=1) was OOM-killed at 23 GB
    with pytest.raises(ParameterError, match="out of range"):
        Blend()(np.zeros(1000, np.float32), 1)


# -- inputs shorter than an offline effect's analysis ---------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_blend_takes_a_few_samples(n):
    from blendfx.effects import Blend

    x = (0.1 * np.sin(np.arange(n) + 1.0)).astype(np.float32)
    out = Blend()(x, SR)  # the issue: 1 sample raised "Unable to determine channel layout"
    assert out.shape == (n,) and np.isfinite(out).all()


def test_short_input_is_padded_for_offline_effects_only():
    seen = []

    class _Probe(Effect):
        registered = False
        supports_streaming = False

        def _process(self, audio, sample_rate, sidechain):
            seen.append(audio.shape[1])
            return audio * 2

    out = _Probe()(np.full(3, 0.25, np.float32), SR)
    assert seen == [int(np.ceil(0.25 * SR))] and out.tolist() == [0.5, 0.5, 0.5]
    assert EFFECT_REGISTRY["Utility"].min_seconds == 0.0  # streaming effects: as they come
    assert EFFECT_REGISTRY["Blend"].min_seconds == 0.25


# -- a truncated WAV is an error, not silence ------------------------------------------------------
def test_truncated_wav_is_refused(tmp_path):
    full = tmp_path / "full.wav"
    write_audio(full, np.full((1, 3 * SR), 0.1, np.float32), SR, bit_depth=16)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:44 + 2 * SR])  # header says 3 s, 1 s of data
    for reader in (read_audio, audio_info):
        with pytest.raises(AudioFileError, match=r"truncated.*3\.000 s.*0\.99\d s"):
            reader(cut)
    assert read_audio(full)[0].shape == (1, 3 * SR)  # a whole file still reads


# -- deeply nested TOML is a PresetError / SessionError, not a RecursionError ----------------------
def test_deep_toml_preset_and_session(tmp_path):
    from blendfx.errors import SessionError
    from blendfx.render.session import load_session, session_from_dict

    (tmp_path / "p.toml").write_text("[chain]\ntype = 'Chain'\nx = " + "[" * 3000 + "]" * 3000)
    with pytest.raises(PresetError, match="nested too deeply"):
        load_preset(tmp_path / "p.toml")
    (tmp_path / "s.toml").write_text("[session]\nname = " + "{a = " * 3000 + "1" + "}" * 3000)
    with pytest.raises(SessionError, match="nested too deeply"):
        load_session(tmp_path / "s.toml")
    deep: dict = {"type": "Chain", "plugins": []}
    cur = deep
    for _ in range(2000):
        cur["plugins"].append({"type": "Chain", "plugins": []})
        cur = cur["plugins"][0]
    with pytest.raises(PresetError, match="nested too deeply"):
        processor_from_dict(deep)
    with pytest.raises(SessionError, match="nested too deeply"):
        session_from_dict({"tracks": [{"name": "a", "chain": deep}]}, tmp_path)


def test_read_toml_errors_are_one_type(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(PresetError, match="not a text"):
        read_toml(tmp_path / "bin.toml", PresetError)
    with pytest.raises(PresetError, match="cannot read"):
        read_toml(tmp_path, PresetError)  # a folder
    assert nesting_depth({"a": [[1]]}) == 3 and nesting_depth(1) == 0
    ok = "a = " + "[" * (MAX_TOML_DEPTH - 1) + "]" * (MAX_TOML_DEPTH - 1)
    (tmp_path / "ok.toml").write_text(ok)
    assert read_toml(tmp_path / "ok.toml", PresetError)["a"]


def test_float_audio_beyond_plus_80_dbfs_is_refused():
    """1e30 made the Composer, Segmenter and Stylizer overflow (NaN out, RuntimeError);
    16384.0 (int16 PCM stored as floats) passed as +84 dBFS."""
    from blendfx.effects import Utility

    for bad in (1e30, 16384.0, 1e300):
        x = np.full(1000, bad)
        with pytest.raises(ParameterError, match=r"peaks at .* dBFS.*divide by 32768"):
            Utility()(x, SR)
    x = np.full(1000, 1e3, np.float32)  # +60 dBFS: hot, but taken
    x[3] = np.nan
    with pytest.raises(ParameterError, match="NaN"):  # NaN is reported as NaN, not as a peak
        Utility()(x, SR)
    assert Utility()(np.full(10, 1e3), SR).max() == pytest.approx(1e3)


def test_missing_shared_data_fails_when_required(monkeypatch):
    """CI runs with the shared data: there a missing file must fail, not skip silently."""
    from _pytest.outcomes import Failed, Skipped

    from ..conftest import shared

    monkeypatch.delenv("BLENDFX_REQUIRE_SHARED_DATA", raising=False)
    with pytest.raises(Skipped, match="shared data not found"):
        shared("no", "such", "file.wav")
    monkeypatch.setenv("BLENDFX_REQUIRE_SHARED_DATA", "1")
    with pytest.raises(Failed, match="BLENDFX_REQUIRE_SHARED_DATA"):
        shared("no", "such", "file.wav")
