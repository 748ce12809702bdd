"""Built-in synthesized voices: drums, bass, keys, pads, leads and textures, in numpy.

Every voice is a pure function of its note: (pitch, length, velocity, brightness, pitch-bend
curve, sample rate) -> samples, made of a tone that does not depend on the note's length (its
first samples are the same for a short and a long note) times an amplitude envelope. There is
no hidden random state (noise sources are seeded from the voice and the tone), so a part renders
the same way every time, which is what lets an exported MIDI file re-render to exactly the audio
the composer produced.

Engines, all vectorized over samples:

- subtractive: band-limited (wavetable) saw/square/triangle/sine oscillators, detuned unison, an
  ADSR amplitude envelope and a static low-pass filter with a filter envelope (a crossfade
  between a bright and a dark filtering of the same oscillators);
- FM: two-operator frequency modulation with a decaying index (electric piano, bells, vibes);
- additive: a few decaying, slightly inharmonic partials (piano, organ, flute, timpani);
- plucked string: Karplus-Strong with a fractional-delay loop filter, all periods at once in
  the frequency domain (guitar, harp, upright bass);
- band noise: pitched band-passed noise (breath/air pads, vinyl hiss, brushes);
- drum kit: kick, snare, clap, hats, cymbals, toms, shaker and small percussion, each a sample
  rendered once per sample rate and placed at every hit.

:func:`render_part` renders a list of notes with one voice (notes sharing a tone share one
rendering of it), :func:`render_drums` a list of General MIDI drum hits (channel 10) to stereo.
:func:`voice_for_program` maps a General MIDI program to the nearest built-in voice.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

__all__ = ["Voice", "VOICES", "DRUM_PIECES", "render_part", "render_drums", "voice_for_program",
           "drum_piece_for_key", "note_tail_s"]


# -- building blocks -----------------------------------------------------------------------------
def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def _phase(freq: float | np.ndarray, n: int, sr: float, phase0: float = 0.0) -> np.ndarray:
    """Phase in cycles (unwrapped) of an oscillator at a fixed or per-sample frequency (Hz)."""
    if np.ndim(freq) == 0:
        return phase0 + float(freq) / sr * np.arange(n)
    return phase0 + np.cumsum(np.asarray(freq, dtype=np.float64)[:n]) / sr


_TABLE_SIZE = 8192
_TABLE_BITS = 13
_ramp_cache = [np.arange(0, dtype=np.uint32)]


def _ramp(n: int) -> np.ndarray:
    """``np.arange(n)`` as uint32, from a shared cache (read-only)."""
    ramp = _ramp_cache[0]
    if ramp.size < n:
        ramp = np.arange(max(n, 2 * ramp.size), dtype=np.uint32)
        ramp.flags.writeable = False
        _ramp_cache[0] = ramp
    return ramp[:n]


def _table_index(freq: float | np.ndarray, n: int, sr: float, phase0: float = 0.0) -> np.ndarray:
    """Wavetable indices of an oscillator's phase. A fixed frequency runs a 32-bit phase
    accumulator (frequency exact to 1e-5 Hz, wrapping for free, no float phase to lose
    precision over a long note); a varying one integrates its float phase."""
    if np.ndim(freq) == 0:
        step = np.uint32(int(round(float(freq) / sr * 2.0 ** 32)) % 2 ** 32)
        acc = _ramp(n) * step  # wraps modulo 2**32: the phase in cycles, fractional part
        acc += np.uint32(int(round((phase0 % 1.0) * 2.0 ** 32)) % 2 ** 32)
        acc >>= np.uint32(32 - _TABLE_BITS)
        return acc
    return (_phase(freq, n, sr, phase0) * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)


def _sine_osc(freq: float | np.ndarray, n: int, sr: float, phase0: float = 0.0) -> np.ndarray:
    """A sine oscillator (table lookup), float32."""
    return _table(("sine",), 1)[_table_index(freq, n, sr, phase0)]


def _cycles(freq: float, n: int, sr: float) -> np.ndarray:
    """Fractional phase in cycles [0, 1) of a fixed-frequency oscillator, float32."""
    step = np.uint32(int(round(float(freq) / sr * 2.0 ** 32)) % 2 ** 32)
    acc = _ramp(n) * step
    acc >>= np.uint32(8)  # 24 bits: exact in float32
    return acc.astype(np.float32) * np.float32(2.0 ** -24)


@lru_cache(maxsize=256)
def _table(shapes: tuple, harmonics: int) -> np.ndarray:
    """One band-limited cycle (``_TABLE_SIZE`` samples, peak 1) holding at most ``harmonics``
    harmonics. ``shapes``: names ('saw', 'square', 'triangle', 'sine') mixed equally, or a
    tuple of (harmonic, amplitude) pairs for a fixed additive timbre (organ drawbars)."""
    spec = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    k = np.arange(1, harmonics + 1)
    if shapes and isinstance(shapes[0], tuple):
        for h, amp in shapes:
            if h <= harmonics:
                spec[int(h)] += amp
    else:
        for shape in shapes:
            if shape == "saw":
                spec[k] += 1.0 / k
            elif shape == "square":
                spec[k] += np.where(k % 2 == 1, 1.0 / k, 0.0)
            elif shape == "triangle":
                spec[k] += np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) / k ** 2, 0.0) * 1.5
            elif shape == "sine":
                spec[1] += 1.0
            else:
                raise ValueError(shape)
    # sine partials: imaginary spectrum; irfft scaling so amplitudes are per-harmonic
    table = np.fft.irfft(-1j * spec * (_TABLE_SIZE / 2), _TABLE_SIZE)
    return (table / max(np.abs(table).max(), 1e-12)).astype(np.float32)


def _osc(shapes: tuple, freq: float | np.ndarray, n: int, sr: float, phase0: float = 0.0,
         top: float | None = None) -> np.ndarray:
    """Wavetable oscillator: band-limited to Nyquist for the highest frequency it plays (``top``
    in Hz, default the highest in ``freq``; the harmonic count is rounded down to a power of two
    so tables are shared between notes)."""
    if top is None:
        top = float(np.max(freq)) if np.ndim(freq) else float(freq)
    if shapes and isinstance(shapes[0], tuple):
        top *= max(h for h, _ in shapes)
        limit = max(1, int(0.45 * sr / max(top, 1.0)) * max(h for h, _ in shapes))
        harmonics = max(h for h, _ in shapes) if limit >= max(h for h, _ in shapes) else limit
    else:
        limit = max(1, int(0.45 * sr / max(top, 1.0)))
        harmonics = int(2 ** np.floor(np.log2(min(limit, _TABLE_SIZE // 2 - 1))))
    return _table(tuple(shapes), harmonics)[_table_index(freq, n, sr, phase0)]


def _sine(phase: np.ndarray) -> np.ndarray:
    """sin(2 pi phase) by table lookup (phase in cycles)."""
    idx = (phase * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)
    return _table(("sine",), 1)[idx]


# -- curves of the sample index alone, shared by a part's notes ---------------------------------
_curves = threading.local()


@contextlib.contextmanager
def _shared_curves() -> Iterator[None]:
    """Inside the block, the curves :func:`_prefix` makes on this thread are kept and shared
    (a part's notes ask for the same vibrato, tremolo and decay curves at many lengths);
    afterwards they are dropped (a long note's curve is megabytes)."""
    _curves.cache = {}
    try:
        yield
    finally:
        _curves.cache = None


def _prefix(key: tuple, n: int, make: Callable[[int], np.ndarray]) -> np.ndarray:
    """The first ``n`` samples of ``make(n)``: a curve whose every sample is elementwise numpy
    on its own index, so the start of a longer one is the same, bit for bit. Inside
    :func:`_shared_curves` the longest one made so far under ``key`` is kept (read-only) and
    sliced; elsewhere the curve is made."""
    cache = getattr(_curves, "cache", None)
    if cache is None:
        return make(n)
    curve = cache.get(key)
    if curve is None or curve.size < n:
        curve = make(n)
        curve.flags.writeable = False
        cache[key] = curve
    return curve[:n]


def _decay(n: int, samples: float) -> np.ndarray:
    """``exp(-k / samples)`` for k = 0 .. n - 1 (float64): an exponential decay."""
    return _prefix(("decay", samples), n, lambda m: np.exp(-np.arange(m) / samples))


@lru_cache(maxsize=1024)
def _butter(order: int, cutoff: float | tuple[float, float], btype: str, sr: float) -> np.ndarray:
    """Butterworth second-order sections (designing one costs as much as filtering a second of
    audio, and notes ask for the same few filters again and again)."""
    return butter(order, cutoff, btype=btype, fs=sr, output="sos")


def _lowpass(x: np.ndarray, cutoff: float, sr: float, order: int = 2) -> np.ndarray:
    cutoff = float(np.clip(cutoff, 20.0, 0.45 * sr))
    return sosfilt(_butter(order, cutoff, "lowpass", sr), x)


def _highpass(x: np.ndarray, cutoff: float, sr: float, order: int = 2) -> np.ndarray:
    cutoff = float(np.clip(cutoff, 10.0, 0.45 * sr))
    return sosfilt(_butter(order, cutoff, "highpass", sr), x)


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: float, order: int = 2) -> np.ndarray:
    lo = float(np.clip(lo, 10.0, 0.44 * sr))
    hi = float(np.clip(hi, lo * 1.05, 0.45 * sr))
    return sosfilt(_butter(order, (lo, hi), "bandpass", sr), x)


def _adsr(n_on: int, n_total: int, sr: float, a: float, d: float, s: float, r: float) -> np.ndarray:
    """Linear attack (s), exponential decay (time constant d, s) to sustain level ``s``, and an
    exponential release (time constant r, s) from wherever the note was at its note-off; the
    last 3 ms fade to zero so a cut tail never clicks."""
    env = np.empty(n_total, dtype=np.float32)
    held = min(n_on, n_total)
    na = min(int(a * sr), held)
    env[:na] = np.arange(na, dtype=np.float32) / np.float32(max(a * sr, 1.0))
    if held > na:
        if d >= 1e5 or s >= 1.0:
            env[na:held] = 1.0
        else:
            decay = np.arange(held - na, dtype=np.float32) / np.float32(d * sr)
            env[na:held] = s + (1.0 - s) * np.exp(-decay)
    if n_total > held:
        level = env[held - 1] if held else np.float32(0.0)
        release = np.arange(n_total - held, dtype=np.float32) / np.float32(max(r, 1e-4) * sr)
        env[held:] = level * np.exp(-release)
    fade = min(n_total, int(0.003 * sr))
    if fade > 1:
        env[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return env


@dataclass(frozen=True)
class Voice:
    """A synth voice: an engine with its settings.

    Attributes
    ----------
    name : str
        Voice name (the key in :data:`VOICES`).
    engine : callable
        ``engine(freq, n, velocity, sr, bend, **params) -> np.ndarray``: the note's tone,
        ``n`` samples long, before its amplitude envelope (the first ``m`` samples of a
        longer tone are the tone of ``m`` samples).
    release : float
        Release tail after note-off in s (how far past its note a note sounds).
    program : int
        The General MIDI program written for this voice.
    params : dict
        Engine settings, envelope (ADSR) settings included.
    gain : float
        Level trim so voices sit together at equal velocities.
    """

    name: str
    engine: Callable[..., np.ndarray]
    release: float
    program: int
    params: dict = field(default_factory=dict)
    gain: float = 1.0


# -- engines -------------------------------------------------------------------------------------
def _vibrato(f, n_total, sr, depth, rate):
    """Frequency curve with a vibrato (semitones) that fades in after the attack."""
    def ratio(m: int) -> np.ndarray:
        t = np.arange(m) / sr
        amount = depth * np.clip(t / 0.4 - 0.3, 0.0, 1.0)
        return 2.0 ** (amount * _sine(rate * t) / 12.0)

    return f * _prefix(("vibrato", sr, depth, rate), n_total, ratio)


def _lfo_gain(depth: float, rate: float, n_total: int, sr: float) -> np.ndarray:
    return _prefix(("lfo", depth, rate, sr), n_total,
                   lambda m: 1.0 - depth * 0.5 * (1.0 + _sine(rate * np.arange(m) / sr)))


def _subtractive(freq, n, vel, sr, bend, *, shapes=("saw",), unison=1, detune=0.0, sub=0.0,
                 cutoff=2000.0, keytrack=0.5, env_amount=2.0, fenv_decay=0.3, vibrato=0.0, vib_rate=5.0,
                 tremolo=0.0, trem_rate=6.0, noise=0.0, formants=(), seed=0):
    f = freq if bend is None else freq * bend
    # the band limit is set by the highest pitch the note can reach, not by how long it is
    top = float(np.max(f)) * 2.0 ** (vibrato / 12.0) * 2.0 ** (detune / 1200.0)
    if vibrato:
        f = _vibrato(f, n, sr, vibrato, vib_rate)
    spread = np.linspace(-1.0, 1.0, unison) if unison > 1 else np.zeros(1)
    x = np.zeros(n, dtype=np.float32)
    for i, u in enumerate(spread):
        x += _osc(tuple(shapes), f * 2.0 ** (u * detune / 1200.0), n, sr, (0.13 + 0.37 * i) % 1.0, top=top)
    x *= np.float32(1.0 / len(spread))
    if sub:
        x += np.float32(sub) * _sine_osc(np.asarray(f) * 0.5 if np.ndim(f) else f * 0.5, n, sr)
    if noise:
        x += np.float32(noise) * np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
    if formants:
        x = sum(g * _bandpass(x, fc / 1.25, fc * 1.25, sr) for fc, g in formants)
    base = cutoff * (float(np.mean(freq)) / 261.6) ** keytrack * (0.6 + 0.6 * vel)
    dark = _lowpass(x, base, sr)
    if env_amount > 1.0:
        bright = _lowpass(x, base * env_amount, sr)
        fenv = _decay(n, sr * fenv_decay)
        x = dark + (bright - dark) * fenv
    else:
        x = dark
    if tremolo:
        x = x * _lfo_gain(tremolo, trem_rate, n, sr)
    return x


def _fm(freq, n, vel, sr, bend, *, ratio=1.0, index=2.0, index_decay=0.4, tine=0.0, tine_ratio=14.0,
        tremolo=0.0, trem_rate=5.0):
    """Two-operator FM: ``sin(carrier + I(t) sin(modulator))`` with a decaying index."""
    def fall(tau: float) -> np.ndarray:  # exp(-t / tau), float32
        return _prefix(("fall32", sr, tau), n, lambda m: np.exp(
            _ramp(m).astype(np.float32) * np.float32(1.0 / sr) * np.float32(-1.0 / tau)))

    depth = fall(index_decay) * np.float32(index * (0.4 + 0.8 * vel) / (2 * np.pi))
    ring = fall(0.03) * np.float32(tine * vel) if tine else None
    if bend is None:  # phases from accumulators, float32
        x = _sine(_cycles(freq, n, sr) + depth * _sine_osc(freq * ratio, n, sr))
        if tine:
            x = x + ring * _sine_osc(freq * tine_ratio, n, sr)
    else:
        car_ph = _phase(freq * bend, n, sr)
        x = _sine(car_ph + depth * _sine(car_ph * ratio))
        if tine:
            x = x + ring * _sine(car_ph * tine_ratio)
    if tremolo:
        x = x * _lfo_gain(tremolo, trem_rate, n, sr)
    return x


def _organ(freq, n, vel, sr, bend, *, drawbars=((1, 1.0),), noise=0.0, vibrato=0.0, vib_rate=5.0,
           click=0.0, seed=0):
    """A fixed additive timbre (drawbars as harmonics of half the pitch, so 1 is the sub-octave)
    with a flat envelope: organ, flute, sub bass."""
    f = freq if bend is None else freq * bend
    top = float(np.max(f)) * 0.5 * 2.0 ** (vibrato / 12.0)
    if vibrato:
        f = _vibrato(f, n, sr, vibrato, vib_rate)
    x = _osc(tuple(drawbars), np.asarray(f) * 0.5, n, sr, top=top)
    if noise or click:
        rng = np.random.default_rng(seed)
        nz = rng.standard_normal(n, dtype=np.float32)
        f_mean = float(np.mean(freq))
        if noise:
            x = x + noise * _bandpass(nz, f_mean, min(f_mean * 4, 0.4 * sr), sr)
        if click:
            x = x + click * _highpass(nz, 2000.0, sr) * np.exp(-np.arange(n) / (0.004 * sr))
    return x


def _additive(freq, n, vel, sr, bend, *, partials=((1, 1.0, 1.0),), d=1.5, noise=0.0, sweep=0.0,
              sweep_time=0.05, seed=0):
    """Decaying (possibly inharmonic) partials (ratio, amplitude, decay multiplier of ``d`` s):
    timpani."""
    f = freq if bend is None else freq * bend
    t = np.arange(n) / sr
    if sweep:
        f = f * (1.0 + sweep * np.exp(-t / sweep_time))
    x = np.zeros(n)
    f_mean = float(np.mean(freq))
    for k, (ratio, amp, decay_mult) in enumerate(partials):
        if f_mean * ratio >= 0.45 * sr:
            continue
        x += amp * _sine_osc(f * ratio, n, sr, 0.1 * k) * np.exp(-t * decay_mult / d)
    if noise:
        rng = np.random.default_rng(seed)
        x += noise * _bandpass(rng.standard_normal(n), f_mean, min(f_mean * 4, 0.4 * sr), sr) \
            * np.exp(-t / 0.05)
    return x


def _pluck(freq, n, vel, sr, bend, *, decay=2.0, brightness=0.5, body=0.0, seed=0):
    """Karplus-Strong: a noise burst circulating in a delay line of ``D`` samples whose loop
    filter ``g ((1 - w) + w z^-1)`` both damps it (more at high frequencies) and delays it by
    ``w`` of a sample, so the period ``D + w`` gives the exact pitch.

    Each trip round the loop applies the same filter to one period, so period ``k`` is the
    burst's spectrum times ``(g H)^k`` (with the line treated as circular): all periods come
    from one batch of inverse FFTs instead of a sample-by-sample recursion. The string is
    damped after its note-off by the envelope (``damp_release``)."""
    length = sr / float(freq)
    D = max(2, int(np.floor(length)))
    w = float(length - D)
    g = 0.001 ** (length / (sr * decay))
    rng = np.random.default_rng(seed)
    burst = rng.uniform(-1.0, 1.0, D)
    burst = _lowpass(burst, 800.0 + 9000.0 * brightness * vel, sr, 1)
    burst -= burst.mean()
    periods = int(np.ceil(n / D))
    omega = 2.0 * np.pi * np.fft.rfftfreq(D)
    loop = g * ((1.0 - w) + w * np.exp(-1j * omega))
    spectra = np.fft.rfft(burst)[None, :] * loop[None, :] ** np.arange(periods)[:, None]
    out = np.fft.irfft(spectra, n=D, axis=1).ravel()[:n]
    if body:
        out = out + body * _lowpass(out, 250.0, sr)
    return out


def _clicks(n: int, sr: float, rate_hz: float, highpass_hz: float, seed: int, chunk: int = 64) -> np.ndarray:
    """Random clicks (``rate_hz`` a second on average, Gaussian strengths) through a high-pass,
    ``(n,)``. Drawn as a sequence of gaps in fixed-size chunks, so a shorter signal is exactly
    the start of a longer one; each click is the filter's impulse response (until it has died
    away, below 1e-9), placed, rather than the filter run over the whole silent signal."""
    gaps_rng = np.random.default_rng([seed, 1])
    amps_rng = np.random.default_rng([seed, 2])
    impulse = np.zeros(int(sr * 0.01), dtype=np.float64)
    impulse[0] = 1.0
    response = _highpass(impulse, highpass_hz, sr)
    response = response[: int(np.flatnonzero(np.abs(response) > 1e-9)[-1]) + 1].astype(np.float32)
    out = np.zeros(n + response.size, dtype=np.float32)
    at = 0.0
    while True:
        pos = at + np.cumsum(gaps_rng.exponential(sr / rate_hz, chunk))
        amps = amps_rng.standard_normal(chunk).astype(np.float32)
        inside = pos < n
        for p, amp in zip(pos[inside].astype(np.int64), amps[inside], strict=True):
            out[p:p + response.size] += amp * response
        if not inside.all():
            return out[:n]
        at = pos[-1]


def _band_noise(freq, n, vel, sr, bend, *, q=6.0, tone=0.15, crackle=0.0, seed=0, lfo=0.0):
    """Pitched noise: white noise through a band-pass around the note (bandwidth f/q), with a
    little sine at the pitch so the ear hears a note; ``crackle`` adds vinyl clicks."""
    f0 = float(freq)
    rng = np.random.default_rng(seed)
    nz = rng.standard_normal(n, dtype=np.float32)
    bw = f0 / q
    x = _bandpass(nz, f0 - bw / 2, f0 + bw / 2, sr) * np.sqrt(q)
    x += tone * _sine_osc(f0 if bend is None else f0 * bend, n, sr)
    if lfo:
        x *= _lfo_gain(lfo, 0.3 + (f0 % 1.0) * 0.2, n, sr)
    if crackle:  # vinyl clicks: about 8 a second, at random places and strengths
        x += np.float32(6.0 * crackle) * _clicks(n, sr, 8.0, 1500.0, seed)
    return x


#: Each engine's amplitude envelope: ADSR settings (a, d, s, r) taken from the voice's
#: parameters (names with their defaults); ``None`` entries are fixed (no decay: d = 1e6, s = 1;
#: a plucked string has no attack). The engines make the rest of the sound, the tone, which
#: does not depend on the note's length.
_ENVELOPES: dict[Callable, tuple] = {
    _subtractive: (("a", 0.005), ("d", 0.3), ("s", 0.7), ("r", 0.2)),
    _fm: (("a", 0.002), ("d", 1.2), ("s", 0.0), ("r", 0.3)),
    _organ: (("a", 0.008), None, None, ("r", 0.08)),
    _additive: (("a", 0.002), None, None, ("r", 0.3)),
    _pluck: (None, None, None, ("damp_release", 0.08)),
    _band_noise: (("a", 0.3), ("d", 1.0), ("s", 1.0), ("r", 0.8)),
}
_FIXED_ENVELOPE = (0.0, 1e6, 1.0, 0.0)


def _split_params(engine: Callable, params: dict) -> tuple[dict, tuple[float, float, float, float]]:
    """A voice's settings split into the tone's and the envelope's ``(a, d, s, r)``."""
    tone = dict(params)
    adsr = tuple(float(tone.pop(spec[0], spec[1])) if spec else fixed
                 for spec, fixed in zip(_ENVELOPES[engine], _FIXED_ENVELOPE, strict=True))
    return tone, adsr  # type: ignore[return-value]


# -- the voice table ----------------------------------------------------------------------------
_TIMPANI = ((1, 1.0, 1.0), (1.5, 0.5, 1.6), (1.98, 0.35, 2.0), (2.44, 0.2, 2.5))

VOICES: dict[str, Voice] = {v.name: v for v in (
    Voice("piano", _subtractive, 0.3, 0, {"shapes": ("triangle", "saw"), "unison": 2, "detune": 3,
                                          "a": 0.002, "d": 1.1, "s": 0.0, "r": 0.25, "cutoff": 1500.0,
                                          "keytrack": 0.6, "env_amount": 3.0, "fenv_decay": 0.25}, 0.8),
    Voice("epiano", _fm, 0.35, 4, {"ratio": 1.0, "index": 1.6, "index_decay": 0.5, "tine": 0.25,
                                   "d": 1.6, "s": 0.0, "r": 0.35, "tremolo": 0.15}, 0.6),
    Voice("organ", _organ, 0.08, 16, {"drawbars": ((1, 0.5), (2, 1.0), (4, 0.6), (6, 0.35), (8, 0.3),
                                                   (12, 0.12)), "a": 0.008, "r": 0.08, "click": 0.15},
          0.35),
    Voice("guitar", _pluck, 0.15, 25, {"decay": 2.5, "brightness": 0.55, "body": 0.5}, 0.7),
    Voice("dist_guitar", _subtractive, 0.1, 30, {"shapes": ("saw", "square"), "unison": 2, "detune": 12,
                                                 "a": 0.004, "d": 0.8, "s": 0.75, "r": 0.1,
                                                 "cutoff": 2400.0, "keytrack": 0.3, "env_amount": 1.8},
          0.45),
    Voice("guitar_lead", _subtractive, 0.15, 29, {"shapes": ("saw",), "unison": 2, "detune": 8, "a": 0.01,
                                                  "d": 0.6, "s": 0.8, "r": 0.15, "cutoff": 2800.0,
                                                  "vibrato": 0.25, "env_amount": 1.5}, 0.45),
    Voice("bass", _subtractive, 0.06, 33, {"shapes": ("saw",), "sub": 0.6, "a": 0.004, "d": 0.5, "s": 0.6,
                                           "r": 0.06, "cutoff": 700.0, "keytrack": 0.2, "env_amount": 2.5,
                                           "fenv_decay": 0.08}, 0.8),
    Voice("upright", _pluck, 0.1, 32, {"decay": 1.6, "brightness": 0.25, "body": 1.2}, 1.1),
    Voice("synth_bass", _subtractive, 0.06, 38, {"shapes": ("saw", "square"), "sub": 0.5, "a": 0.003,
                                                 "d": 0.25, "s": 0.5, "r": 0.05, "cutoff": 500.0,
                                                 "keytrack": 0.3, "env_amount": 4.0, "fenv_decay": 0.12},
          0.8),
    Voice("sub_bass", _organ, 0.1, 39, {"drawbars": ((2, 1.0), (4, 0.2), (6, 0.06)), "a": 0.006, "r": 0.1},
          0.9),
    Voice("cello", _subtractive, 0.25, 42, {"shapes": ("saw",), "unison": 2, "detune": 6, "a": 0.12, "d": 1.0,
                                            "s": 0.85, "r": 0.25, "cutoff": 1400.0, "vibrato": 0.15,
                                            "env_amount": 1.0}, 0.6),
    Voice("strings", _subtractive, 0.4, 48, {"shapes": ("saw",), "unison": 3, "detune": 14, "a": 0.25,
                                             "d": 1.0, "s": 0.9, "r": 0.4, "cutoff": 2600.0,
                                             "vibrato": 0.12, "env_amount": 1.0}, 0.45),
    Voice("tremolo", _subtractive, 0.3, 44, {"shapes": ("saw",), "unison": 3, "detune": 12, "a": 0.05,
                                             "d": 1.0, "s": 0.9, "r": 0.3, "cutoff": 3000.0,
                                             "tremolo": 0.8, "trem_rate": 12.0, "env_amount": 1.0}, 0.5),
    Voice("pad", _subtractive, 0.6, 89, {"shapes": ("saw", "triangle"), "unison": 3, "detune": 10,
                                         "a": 0.5, "d": 2.0, "s": 0.8, "r": 0.6, "cutoff": 1500.0,
                                         "keytrack": 0.4, "env_amount": 1.0}, 0.45),
    Voice("choir", _subtractive, 0.5, 52, {"shapes": ("saw",), "unison": 3, "detune": 9, "a": 0.4,
                                           "d": 2.0, "s": 0.9, "r": 0.5, "cutoff": 4000.0,
                                           "formants": ((700.0, 1.0), (1150.0, 0.6), (2800.0, 0.25)),
                                           "vibrato": 0.1, "env_amount": 1.0}, 0.7),
    Voice("supersaw", _subtractive, 0.25, 81, {"shapes": ("saw",), "unison": 5, "detune": 22, "a": 0.004,
                                               "d": 0.35, "s": 0.45, "r": 0.25, "cutoff": 3000.0,
                                               "keytrack": 0.3, "env_amount": 2.5, "fenv_decay": 0.15},
          0.4),
    Voice("brass", _subtractive, 0.15, 61, {"shapes": ("saw",), "unison": 2, "detune": 6, "a": 0.04,
                                            "d": 0.6, "s": 0.75, "r": 0.15, "cutoff": 1100.0,
                                            "env_amount": 3.0, "fenv_decay": 0.12}, 0.5),
    Voice("reed", _subtractive, 0.12, 65, {"shapes": ("square", "saw"), "a": 0.03, "d": 0.6, "s": 0.8,
                                           "r": 0.12, "cutoff": 1800.0, "vibrato": 0.2,
                                           "env_amount": 1.6, "noise": 0.03}, 0.45),
    Voice("flute", _organ, 0.12, 73, {"drawbars": ((2, 1.0), (4, 0.25), (6, 0.1)), "a": 0.05, "r": 0.12,
                                      "noise": 0.12, "vibrato": 0.2}, 0.55),
    Voice("lead", _subtractive, 0.12, 80, {"shapes": ("square",), "unison": 2, "detune": 7, "a": 0.01,
                                           "d": 0.4, "s": 0.7, "r": 0.12, "cutoff": 2500.0,
                                           "vibrato": 0.15, "env_amount": 1.8}, 0.4),
    Voice("saw_lead", _subtractive, 0.12, 82, {"shapes": ("saw",), "unison": 3, "detune": 12, "a": 0.005,
                                               "d": 0.4, "s": 0.7, "r": 0.15, "cutoff": 3200.0,
                                               "vibrato": 0.12, "env_amount": 2.0}, 0.4),
    Voice("pluck", _subtractive, 0.2, 84, {"shapes": ("saw", "square"), "a": 0.002, "d": 0.18, "s": 0.0,
                                           "r": 0.2, "cutoff": 1200.0, "env_amount": 5.0,
                                           "fenv_decay": 0.06}, 0.6),
    Voice("harp", _pluck, 0.4, 46, {"decay": 3.0, "brightness": 0.4, "body": 0.2}, 0.7),
    Voice("bell", _fm, 0.8, 10, {"ratio": 3.5, "index": 2.2, "index_decay": 0.25, "a": 0.001, "d": 1.8,
                                 "s": 0.0, "r": 0.8}, 0.4),
    Voice("vibes", _fm, 0.6, 11, {"ratio": 4.0, "index": 0.6, "index_decay": 0.2, "a": 0.001, "d": 2.0,
                                  "s": 0.0, "r": 0.6, "tremolo": 0.3, "trem_rate": 5.5}, 0.55),
    Voice("timpani", _additive, 0.6, 47, {"partials": _TIMPANI, "a": 0.002, "d": 1.2, "r": 0.6,
                                          "sweep": 0.04, "noise": 0.1}, 0.9),
    Voice("air", _band_noise, 0.6, 121, {"q": 5.0, "a": 0.35, "r": 0.6, "tone": 0.12, "lfo": 0.3}, 0.5),
    Voice("vinyl", _band_noise, 0.4, 122, {"q": 1.5, "a": 0.05, "r": 0.4, "tone": 0.0, "crackle": 0.6}, 0.3),
    Voice("brush", _band_noise, 0.25, 123, {"q": 1.2, "a": 0.12, "r": 0.25, "tone": 0.0, "lfo": 0.6}, 0.35),
)}

# General MIDI program -> voice (for MIDI files blendfx did not write).
_GM_RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 3, "piano"), (4, 5, "epiano"), (6, 7, "piano"), (8, 10, "bell"), (11, 13, "vibes"),
    (14, 14, "bell"), (15, 15, "harp"), (16, 20, "organ"), (21, 23, "reed"), (24, 28, "guitar"),
    (29, 31, "dist_guitar"), (32, 32, "upright"), (33, 37, "bass"), (38, 39, "synth_bass"),
    (40, 44, "strings"), (45, 46, "harp"), (47, 47, "timpani"), (48, 51, "strings"), (52, 54, "choir"),
    (55, 55, "supersaw"), (56, 63, "brass"), (64, 71, "reed"), (72, 79, "flute"), (80, 80, "lead"),
    (81, 81, "saw_lead"), (82, 83, "flute"), (84, 87, "saw_lead"), (88, 95, "pad"), (96, 103, "pad"),
    (104, 108, "guitar"), (109, 109, "reed"), (110, 110, "strings"), (111, 111, "reed"),
    (112, 114, "bell"), (115, 118, "timpani"), (119, 119, "air"), (120, 127, "air"),
)


#: Release tails last this many release time constants (-35 dB), then fade out.
_TAIL_TAUS = 4.0


def voice_for_program(program: int) -> str:
    """The built-in voice nearest a General MIDI program (0-127)."""
    program = int(np.clip(program, 0, 127))
    for lo, hi, name in _GM_RANGES:
        if lo <= program <= hi:
            return name
    return "piano"


def note_tail_s(voice: str) -> float:
    """How long (s) a note of ``voice`` rings after its note-off."""
    return VOICES[voice].release * _TAIL_TAUS if voice in VOICES else 0.5


def _brighten(engine: Callable, params: dict, factor: float) -> dict:
    """Engine settings for a brightness factor (MIDI CC 74): filter cutoff, FM index, pluck
    excitation or noise bandwidth scaled; timbres without such a control are unchanged."""
    if factor == 1.0:
        return params
    out = dict(params)
    if engine is _subtractive:
        out["cutoff"] = out.get("cutoff", 2000.0) * factor
    elif engine is _fm:
        out["index"] = out.get("index", 2.0) * np.sqrt(factor)
    elif engine is _pluck:
        out["brightness"] = float(np.clip(out.get("brightness", 0.5) * factor, 0.05, 2.0))
    elif engine is _band_noise:
        out["q"] = max(0.7, out.get("q", 6.0) / factor)
    return out


def _held_samples(n: int) -> int:
    """A note's held length rounded to 1/64..1/32 of itself (a 4 s pad note to 46 ms, a 0.1 s
    note to 1.5 ms): far below what the ear resolves on a release, and it lets the notes of a
    loop on a drifting tempo map share one rendering."""
    n = max(1, int(n))
    step = 1 << max(0, int(np.log2(max(n, 64))) - 6)
    return max(1, int(round(n / step)) * step)


def _note_tone(v: Voice, freq: float, key: tuple, n: int, sr: float, ratio: np.ndarray | None,
               params: dict) -> np.ndarray:
    """The tone of a note (before its envelope, level and velocity gain included), float32."""
    _, velocity, _ = key
    vel = velocity / 127.0
    params = dict(params)
    if v.engine in (_subtractive, _additive, _pluck, _band_noise, _organ):
        params["seed"] = _seed(v.name, key)
    wave = v.engine(freq, n, vel, sr, ratio, **params)
    return (wave * (v.gain * vel * vel)).astype(np.float32)


def render_part(voice: str, notes: np.ndarray, sample_rate: float, length: int,
                bend: Callable[[int, int], np.ndarray | None] | None = None,
                brightness: np.ndarray | None = None) -> np.ndarray:
    """Render notes with one voice into a mono buffer.

    A note is its voice's tone (which depends on pitch, velocity and brightness) times an
    amplitude envelope (which depends on its length). Notes sharing a tone, the rule in music
    that repeats itself, share one rendering of it, as long as the longest of them, cut to each
    note's length (notes under a pitch bend are rendered on their own).

    Parameters
    ----------
    voice : str
        A key of :data:`VOICES`.
    notes : np.ndarray
        ``(n, 4)``: start (s), end (s), pitch (fractional MIDI note, tuning included), velocity
        (1-127).
    sample_rate : float
        Hz.
    length : int
        Output length in samples (notes ringing past it are cut).
    bend : callable, optional
        ``bend(start_sample, n_samples)`` -> per-sample frequency ratio for that span, or None
        where the pitch wheel is centred.
    brightness : np.ndarray, optional
        ``(n,)`` brightness factor per note (1 = the voice as designed; MIDI CC 74).

    Returns
    -------
    np.ndarray
        ``(length,)`` float32.
    """
    v = VOICES[voice]
    sr = float(sample_rate)
    out = np.zeros(length, dtype=np.float32)
    tail = int(round(v.release * _TAIL_TAUS * sr))
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    bright = np.ones(len(notes)) if brightness is None else np.asarray(brightness, dtype=np.float64)
    envelopes: dict[tuple[int, int], np.ndarray] = {}
    settings: dict[float, tuple[dict, tuple]] = {}
    scratch = [np.empty(0, dtype=np.float32)]  # one buffer for every note's enveloped tone

    def place(s0: int, wave: np.ndarray, n_on: int, n_total: int, adsr: tuple) -> None:
        env = envelopes.get((n_on, n_total))
        if env is None:
            env = envelopes[(n_on, n_total)] = _adsr(min(n_on, n_total), n_total, sr, *adsr)
        a, b = max(s0, 0), min(s0 + n_total, length)
        if b > a:
            if scratch[0].size < b - a:
                scratch[0] = np.empty(b - a, dtype=np.float32)
            out[a:b] += np.multiply(wave[a - s0:b - s0], env[a - s0:b - s0], out=scratch[0][:b - a])

    # the notes' tones share their vibrato, tremolo and decay curves (see _prefix)
    with _shared_curves():
        groups: dict[tuple, list[tuple[int, int, int]]] = {}
        for (start, end, pitch, velocity), factor in zip(notes, bright, strict=True):
            s0 = int(round(start * sr))
            if s0 >= length or velocity <= 0:
                continue
            key = (round(float(pitch), 4), int(velocity), round(float(factor), 3))
            freq = 440.0 * 2.0 ** ((key[0] - 69.0) / 12.0)
            if freq >= 0.45 * sr or freq < 8.0:
                continue
            n_on = _held_samples(int(round(end * sr)) - s0)
            n_total = max(1, min(n_on + tail, length - s0))
            if key[2] not in settings:
                settings[key[2]] = _split_params(v.engine, _brighten(v.engine, v.params, key[2]))
            ratio = bend(s0, n_total) if bend is not None else None
            if ratio is not None:  # a bent note is a tone of its own
                tone_params, adsr = settings[key[2]]
                place(s0, _note_tone(v, freq, key, n_total, sr, ratio, tone_params), n_on, n_total, adsr)
            else:
                groups.setdefault(key, []).append((s0, n_on, n_total))
        for key, placed in groups.items():
            tone_params, adsr = settings[key[2]]
            freq = 440.0 * 2.0 ** ((key[0] - 69.0) / 12.0)
            tone = _note_tone(v, freq, key, max(n for _, _, n in placed), sr, None, tone_params)
            for s0, n_on, n_total in placed:
                place(s0, tone, n_on, n_total, adsr)
    return out


# -- drums ---------------------------------------------------------------------------------------
def _kick(sr):
    t = np.arange(int(0.5 * sr)) / sr
    f = 48.0 + 110.0 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.22)
    click = _highpass(np.random.default_rng(1).standard_normal(t.size), 2000, sr) * np.exp(-t / 0.004)
    return 1.0 * body + 0.25 * click


def _snare(sr):
    t = np.arange(int(0.35 * sr)) / sr
    tone = (np.sin(2 * np.pi * 185 * t) + 0.6 * np.sin(2 * np.pi * 330 * t)) * np.exp(-t / 0.05)
    nz = _bandpass(np.random.default_rng(2).standard_normal(t.size), 1200, 9000, sr) * np.exp(-t / 0.12)
    return 0.5 * tone + 0.9 * nz


def _clap(sr):
    t = np.arange(int(0.4 * sr)) / sr
    nz = _bandpass(np.random.default_rng(3).standard_normal(t.size), 800, 3500, sr)
    env = np.zeros(t.size)
    for k, off in enumerate((0.0, 0.011, 0.022, 0.031)):
        env += np.where(t >= off, np.exp(-(t - off) / (0.006 if k < 3 else 0.15)), 0.0)
    return nz * env * 0.8


def _metal(sr, seconds, decay, hp, seed, freqs=(205.3, 304.4, 369.6, 522.7, 540.0, 800.0)):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sign(np.sin(2 * np.pi * f * 1.8 * t + i)) for i, f in enumerate(freqs))
    x = x + 0.6 * np.random.default_rng(seed).standard_normal(t.size)
    return _highpass(x, hp, sr, 4) * np.exp(-t / decay) * 0.35


def _tom(sr, f0):
    t = np.arange(int(0.6 * sr)) / sr
    f = f0 * (1.0 + 0.5 * np.exp(-t / 0.04))
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.25)
    nz = _bandpass(np.random.default_rng(int(f0)).standard_normal(t.size), 400, 4000, sr) * np.exp(-t / 0.03)
    return body + 0.2 * nz


def _blip(sr, f0, decay, noise=0.1, seed=7):
    t = np.arange(int(max(decay * 6, 0.05) * sr)) / sr
    x = np.sin(2 * np.pi * f0 * t) + 0.4 * np.sin(2 * np.pi * f0 * 2.01 * t)
    x = x + noise * _highpass(np.random.default_rng(seed).standard_normal(t.size), 2000, sr)
    return x * np.exp(-t / decay)


def _shaker(sr):
    t = np.arange(int(0.15 * sr)) / sr
    env = np.minimum(t / 0.015, 1.0) * np.exp(-np.maximum(t - 0.015, 0) / 0.03)
    return _highpass(np.random.default_rng(11).standard_normal(t.size), 5000, sr, 4) * env * 0.6


def _tambourine(sr):
    jingle = _metal(sr, 0.4, 0.09, 6000, 12, freqs=(2300.0, 3100.0, 4200.0, 5100.0))
    return jingle * 1.3


#: Kit pieces: name -> (sample builder, pan -1..1, gain).
DRUM_PIECES: dict[str, tuple[Callable[[float], np.ndarray], float, float]] = {
    "kick": (_kick, 0.0, 1.0),
    "snare": (_snare, 0.05, 0.8),
    "clap": (_clap, -0.05, 0.8),
    "rim": (lambda sr: _blip(sr, 1700.0, 0.012, 0.5), 0.1, 0.5),
    "hat": (lambda sr: _metal(sr, 0.15, 0.035, 7000, 4), 0.3, 0.5),
    "pedal_hat": (lambda sr: _metal(sr, 0.1, 0.02, 6000, 5), 0.3, 0.35),
    "open_hat": (lambda sr: _metal(sr, 0.8, 0.25, 6500, 6), 0.3, 0.4),
    "crash": (lambda sr: _metal(sr, 2.5, 0.9, 3000, 8, (305.0, 410.0, 587.0, 732.0, 845.0, 1114.0)), -0.3,
              0.45),
    "ride": (lambda sr: _metal(sr, 2.0, 0.7, 4000, 9, (390.0, 512.0, 710.0, 982.0)), -0.35, 0.3),
    "ride_bell": (lambda sr: _blip(sr, 2480.0, 0.4, 0.2), -0.35, 0.3),
    "floor_tom": (lambda sr: _tom(sr, 82.0), -0.25, 0.8),
    "tom_low": (lambda sr: _tom(sr, 110.0), -0.15, 0.8),
    "tom_mid": (lambda sr: _tom(sr, 147.0), 0.0, 0.8),
    "tom_high": (lambda sr: _tom(sr, 196.0), 0.15, 0.8),
    "tambourine": (_tambourine, 0.4, 0.5),
    "cowbell": (lambda sr: _blip(sr, 562.0, 0.08, 0.05), 0.2, 0.4),
    "shaker": (_shaker, 0.45, 0.5),
    "claves": (lambda sr: _blip(sr, 2500.0, 0.025, 0.0), 0.25, 0.5),
    "woodblock": (lambda sr: _blip(sr, 820.0, 0.035, 0.05), -0.2, 0.6),
    "conga": (lambda sr: _tom(sr, 250.0), 0.3, 0.6),
}

_DRUM_KEYS: dict[int, str] = {
    35: "kick", 36: "kick", 37: "rim", 38: "snare", 39: "clap", 40: "snare", 41: "floor_tom",
    42: "hat", 43: "floor_tom", 44: "pedal_hat", 45: "tom_low", 46: "open_hat", 47: "tom_mid",
    48: "tom_high", 49: "crash", 50: "tom_high", 51: "ride", 52: "crash", 53: "ride_bell",
    54: "tambourine", 55: "crash", 56: "cowbell", 57: "crash", 58: "claves", 59: "ride",
    60: "conga", 61: "conga", 62: "conga", 63: "conga", 64: "tom_high", 65: "tom_mid", 66: "tom_low",
    67: "cowbell", 68: "cowbell", 69: "shaker", 70: "shaker", 71: "claves", 72: "claves", 73: "rim",
    74: "rim", 75: "claves", 76: "woodblock", 77: "woodblock", 78: "conga", 79: "conga", 80: "rim",
    81: "tambourine", 82: "shaker",
}


def drum_piece_for_key(key: int) -> str:
    """Kit piece for a General MIDI drum key (nearest sensible piece outside the GM map)."""
    key = int(key)
    if key in _DRUM_KEYS:
        return _DRUM_KEYS[key]
    return "kick" if key < 35 else "shaker"


@lru_cache(maxsize=64)
def _drum_sample(piece: str, sample_rate: float) -> np.ndarray:
    builder, _, gain = DRUM_PIECES[piece]
    return (builder(float(sample_rate)) * gain).astype(np.float64)


def render_drums(hits: np.ndarray, sample_rate: float, length: int) -> np.ndarray:
    """Render General MIDI drum hits to stereo.

    Parameters
    ----------
    hits : np.ndarray
        ``(n, 4)``: start (s), end (s, ignored: drums ring out), drum key, velocity (1-127).
    sample_rate : float
        Hz.
    length : int
        Output length in samples.

    Returns
    -------
    np.ndarray
        ``(2, length)`` float32, each piece at its kit position. Open hats are choked by the
        next closed or pedal hat, as on a real hi-hat.
    """
    hits = np.asarray(hits, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((2, length), dtype=np.float32)
    hat_closes = np.sort([h[0] for h in hits if drum_piece_for_key(h[2]) in ("hat", "pedal_hat")])
    for start, _end, key, velocity in hits:
        piece = drum_piece_for_key(key)
        s0 = int(round(start * sample_rate))
        if s0 >= length or s0 < 0 or velocity <= 0:
            continue
        sample = _drum_sample(piece, float(sample_rate))
        if piece == "open_hat" and hat_closes.size:
            nxt = hat_closes[np.searchsorted(hat_closes, start, side="right"):]
            if nxt.size:
                choke = int(round((nxt[0] - start) * sample_rate))
                if choke < sample.size:
                    sample = sample[:choke] * np.linspace(1.0, 0.0, max(choke, 1)) ** 0.3
        n = min(sample.size, length - s0)
        theta = (DRUM_PIECES[piece][1] + 1.0) * np.pi / 4.0  # the piece's place in the kit
        gains = np.array([np.cos(theta), np.sin(theta)]) * np.sqrt(2.0) * (velocity / 127.0) ** 2
        out[:, s0:s0 + n] += (gains[:, None] * sample[None, :n]).astype(np.float32)
    return out
