"""The masking model: scale, formulas, and what a tone and a noise mask."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx.spectral.analysis import mel_center_frequencies
from blendfx.spectral.psychoacoustics import (
    MaskingModel,
    bark,
    default_model,
    masker_offset_db,
    masking_threshold,
    mel_energy,
    spreading_db,
    threshold_in_quiet_db,
)

SR = 44100


def test_formulas():
    assert bark(1000.0) == pytest.approx(8.5, abs=0.1)
    assert bark(1000.0, "asinh") == pytest.approx(6 * np.arcsinh(1000 / 600))
    assert np.all(np.diff(bark(np.linspace(0, 20000, 100))) > 0)
    ath = threshold_in_quiet_db(np.array([100.0, 1000.0, 3300.0, 15000.0]))
    assert ath[2] < 0 < ath[1] < ath[0] and ath[3] > ath[1]  # most sensitive near 3.3 kHz
    assert np.isfinite(threshold_in_quiet_db(0.0))
    assert spreading_db(0.0) == pytest.approx(0.0, abs=0.01)
    # about +25 dB/Bark below the masker, -10 dB/Bark above it
    assert spreading_db(-3.0) < spreading_db(3.0) < spreading_db(1.0) < 0
    assert masker_offset_db(10.0, 1.0) == pytest.approx(24.5)
    assert masker_offset_db(10.0, 0.0) == pytest.approx(5.5)


def _tone(freq, amp, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _band_noise(lo, hi, amp, seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return (amp * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def _rows(lo, hi):
    fc = mel_center_frequencies()
    return (fc >= lo) & (fc <= hi)


def test_a_tone_masks_nearby_but_not_far_away():
    masker = _tone(1000, 0.3)
    threshold = masking_threshold(masker, SR).at_gain(1.0)[:, 10:-10]
    near = mel_energy(_band_noise(950, 1050, 0.3 * 10 ** (-35 / 20)), SR)[:, 10:-10]
    far = mel_energy(_band_noise(3800, 4200, 0.3 * 10 ** (-35 / 20)), SR)[:, 10:-10]
    rows_near, rows_far = _rows(950, 1050), _rows(3800, 4200)
    # a narrow noise 35 dB under the tone is masked next to it, audible two octaves up
    assert np.mean(near[rows_near] < threshold[rows_near]) > 0.9
    assert np.mean(far[rows_far] > threshold[rows_far]) > 0.9


def test_noise_masks_more_than_a_tone_of_the_same_power():
    probe = mel_energy(_band_noise(900, 1100, 0.3 * 10 ** (-15 / 20), seed=2), SR)[:, 10:-10]
    rows = _rows(950, 1050)
    by_noise = masking_threshold(_band_noise(900, 1100, 0.3, seed=1), SR).at_gain()[:, 10:-10]
    by_tone = masking_threshold(_tone(1000, 0.3 * np.sqrt(2)), SR).at_gain()[:, 10:-10]
    # Johnston: noise-like maskers sit 5.5 dB over their threshold, tones 14.5 + z dB
    assert np.median(by_noise[rows]) > 4 * np.median(by_tone[rows])
    assert np.mean(probe[rows] < by_noise[rows]) > 0.9


def test_threshold_scales_with_gain_squared_and_quiet_stays(music_clip):
    audio, sr = music_clip
    base = masking_threshold(audio, sr)
    louder = masking_threshold(audio * np.float32(2.0), sr)
    np.testing.assert_allclose(louder.spread, 4 * base.spread, rtol=1e-4, atol=1e-12)
    np.testing.assert_array_equal(louder.quiet, base.quiet)
    np.testing.assert_allclose(base.at_gain(2.0), louder.at_gain(1.0), rtol=1e-4)


def test_threshold_in_quiet_calibration():
    """With a full-scale sine at 96 dB SPL, a 1 kHz tone at 16 dB SPL is above the threshold in
    quiet (about 3.4 dB SPL at 1 kHz) and one at -10 dB SPL is below it."""
    model = default_model()
    rows = _rows(990, 1010)
    audible = mel_energy(_tone(1000, 10 ** (-80 / 20)), SR)[:, 10:-10]
    inaudible = mel_energy(_tone(1000, 10 ** (-106 / 20)), SR)[:, 10:-10]
    q = model.threshold(model.power_spectrum(np.zeros(SR), SR)).quiet
    assert audible[rows].max(axis=0).min() > q[rows].min()
    assert inaudible[rows].max() < q[rows].min()
    assert MaskingModel(ref_spl_db=86.0).threshold(np.zeros((model.n_bins, 1))).quiet[rows].min() > \
        q[rows].min()


def test_silence_and_empty():
    t = masking_threshold(np.zeros(SR, np.float32), SR)
    assert t.spread.shape == (512, 100) and not t.spread.any() and np.all(t.quiet > 0)
    assert masking_threshold(np.zeros(100, np.float32), SR).spread.shape == (512, 0)


@pytest.mark.parametrize("dip_db", [-10.0, -40.0, -90.0])
def test_tonality_follows_the_flatness_of_each_band(dip_db):
    """Issue 23: scaling the flatness term by 2 passed every test. The threshold of a masker
    confined to one 1-Bark tonality band, against an independent SFM (scipy's geometric mean)
    and Johnston's ``a = min(SFM_dB / -60, 1)``: half its bins ``dip_db`` under the others."""
    from scipy.stats import gmean

    model = default_model()
    m = model._m
    k = 6  # a tonality band around 6-7 Bark (about 630-770 Hz)
    members = m.tone_mean[k].nonzero()[1]
    power = np.zeros((model.n_bins, 1), np.float64)
    power[members, 0] = 1.0
    power[members[::2], 0] = 10 ** (dip_db / 10)
    p = power[members, 0]
    sfm_db = 10 * np.log10(gmean(p) / p.mean())
    a = min(sfm_db / -60.0, 1.0)
    offset = 10 ** (-masker_offset_db(m.tone_z[k], a) / 10)
    expected = m.mel_spread @ ((m.bands @ power) * offset)
    got = model.threshold(power.astype(np.float32)).spread
    rows = expected[:, 0] > expected.max() * 1e-3
    np.testing.assert_allclose(got[rows, 0], expected[rows, 0], rtol=1e-3)
    assert 0.0 < a <= 1.0
