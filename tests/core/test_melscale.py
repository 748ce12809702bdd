"""blendfx.dsp.melscale gives librosa's numbers bit for bit (it exists to skip librosa's import)."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx.dsp import melscale

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("htk", [False, True])
def test_mel_conversions_equal_librosa(htk):
    f = np.concatenate([[0.0, 999.9, 1000.0, 1000.1], np.geomspace(1.0, 96000.0, 500)])
    np.testing.assert_array_equal(melscale.hz_to_mel(f, htk=htk), librosa.hz_to_mel(f, htk=htk))
    m = melscale.hz_to_mel(f, htk=htk)
    np.testing.assert_array_equal(melscale.mel_to_hz(m, htk=htk), librosa.mel_to_hz(m, htk=htk))
    for scalar in (0.0, 440.0, 1000.0, 15000.0):
        assert melscale.hz_to_mel(scalar, htk=htk) == librosa.hz_to_mel(scalar, htk=htk)
    np.testing.assert_array_equal(
        melscale.mel_frequencies(130, fmin=30.0, fmax=16000.0, htk=htk),
        librosa.mel_frequencies(130, fmin=30.0, fmax=16000.0, htk=htk))


@pytest.mark.parametrize("kwargs", [
    dict(sr=44100, n_fft=2048, n_mels=128),  # the Composer's listening
    dict(sr=22050, n_fft=1024, n_mels=64, fmin=30.0, fmax=8000.0),
    dict(sr=44100, n_fft=17640, n_mels=512, fmin=0.0, fmax=10000.0, htk=True, norm=None,
         dtype=np.float64),  # Riffusion's
])
def test_mel_filters_equal_librosa(kwargs):
    got = melscale.mel_filters(**kwargs)
    want = librosa.filters.mel(**kwargs)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_power_to_db_and_onset_strength_equal_librosa():
    rng = np.random.default_rng(0)
    power = (rng.random((128, 3000)) ** 6 * 10.0).astype(np.float32)
    power[:, 100:200] = 0.0  # silence: the amin and top_db floors
    db = melscale.power_to_db(power, top_db=80.0)
    want_db = librosa.power_to_db(power, ref=1.0, top_db=80.0)
    assert db.dtype == want_db.dtype
    np.testing.assert_array_equal(db, want_db)
    env = melscale.onset_strength(db)
    want = librosa.onset.onset_strength(S=db, sr=44100, lag=1, max_size=1)
    assert env.dtype == want.dtype and env.shape == want.shape
    np.testing.assert_array_equal(env, want)
