"""The Composer (issue 4): music written for a noise, its MIDI, and render_midi.

Real noises from ../shared/data: the grid must lock to clock ticks and chainsaw revs, a hum must
set the key, every genre must render cleanly, the exported MIDI must re-render to the very same
audio, and any MIDI file (Nottingham without a tempo, the Groove drums, Slakh stems) must render.
"""

from __future__ import annotations

import blendfx
import mido
import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects import Composer
from blendfx.effects.composer.arrangement import arrange
from blendfx.effects.composer.composer import render_midi
from blendfx.effects.composer.listening import Core, Listening, Pulse, Tonality, band_edges, listen
from blendfx.effects.composer.midi import build_midi, read_midi
from blendfx.effects.composer.styles import STYLES, style_from_prompt
from blendfx.effects.composer.theory import Key

from ...conftest import shared, threads_started

SR = 44100
CEILING = 10.0 ** (-1.0 / 20.0)
CLOCK = ("1-21934-A", "1-21935-A", "1-35687-A", "1-42139-A", "1-48413-A", "1-57163-A",
         "1-62849-A", "1-62850-A", "2-119748-A", "2-127108-A")
CHAINSAW = ("1-116765-A", "1-19898-A", "1-19898-B", "1-19898-C", "1-47250-A", "1-47250-B",
            "1-64398-A", "1-64398-B", "2-50667-A", "2-50667-B")


def clip(cls: str, name: str, seconds: float | None = None) -> np.ndarray:
    audio, sr = blendfx.read_audio(shared("noise", "esc10", cls, f"{name}.ogg"))
    assert sr == SR
    return audio if seconds is None else audio[:, : int(seconds * SR)]


@pytest.fixture(scope="module")
def composed():
    """One piece for a real clock: the composer, its noise and its music."""
    noise = clip("clock_tick", "1-21934-A")
    composer = Composer(prompt="lofi", seed=0, progress=False)
    return composer, noise, composer.process(noise, SR)


# -- the output ------------------------------------------------------------------------------------
def test_output_is_stereo_same_length_with_headroom(composed):
    _, noise, music = composed
    assert music.shape == (2, noise.shape[1]) and music.dtype == np.float32
    assert np.isfinite(music).all()
    assert np.abs(music).max() <= CEILING + 1e-6
    assert np.sqrt(np.mean(music ** 2)) > 0.01


def test_mono_vector_gives_mono_vector():
    noise = clip("rain", "1-17367-A", 1.0)[0]
    out = Composer(prompt="pop", progress=False).process(noise, SR)
    assert out.shape == noise.shape and out.dtype == np.float32


def test_exported_midi_rerenders_to_the_same_audio(composed, tmp_path):
    composer, _, music = composed
    path = tmp_path / "piece.mid"
    composer.export_midi(path)
    np.testing.assert_array_equal(render_midi(path, SR), music)
    # and from a mido object too
    np.testing.assert_array_equal(render_midi(mido.MidiFile(path), SR), music)


def test_exported_midi_is_a_real_arrangement(composed, tmp_path):
    composer, noise, _ = composed
    path = tmp_path / "piece.mid"
    composer.export_midi(path)
    mid = mido.MidiFile(path)
    assert mid.type == 1 and len(mid.tracks) >= 6
    names = [t.name for t in mid.tracks]
    assert {"Drums", "Bass", "Chords"} <= set(names)
    assert any(m.type == "set_tempo" for m in mid.tracks[0])
    for track in mid.tracks[1:]:
        channels = {m.channel for m in track if hasattr(m, "channel")}
        assert len(channels) == 1, track.name
        is_kit = track.name in ("Drums", "Noise hits")
        assert (channels == {9}) == is_kit, track.name
        if not is_kit:
            assert any(m.type == "program_change" for m in track)
    velocities = {m.velocity for t in mid.tracks for m in t if m.type == "note_on"}
    assert len(velocities) > 5
    assert not list(tmp_path.glob(".*partial*"))  # atomic write left nothing behind
    score = read_midi(path)
    assert abs(score.meta["length_s"] - noise.shape[1] / SR) < 1e-9


def test_export_before_process_raises(tmp_path):
    with pytest.raises(ParameterError, match="process"):
        Composer().export_midi(tmp_path / "x.mid")
    assert not (tmp_path / "x.mid").exists()


def test_same_seed_same_audio_other_seed_other_audio():
    noise = clip("dog_bark", "1-30226-A", 2.0)
    a = Composer(prompt="jazz", seed=3, progress=False).process(noise, SR)
    b = Composer(prompt="jazz", seed=3, progress=False).process(noise, SR)
    c = Composer(prompt="jazz", seed=4, progress=False).process(noise, SR)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("genre", sorted(STYLES))
def test_every_genre_renders_without_clipping_or_dc(genre):
    noise = clip("rain", "1-21189-A", 2.0)
    composer = Composer(prompt=genre, seed=1, progress=False)
    music = composer.process(noise, SR)
    assert composer.last_arrangement.style.name == genre
    assert music.shape == (2, noise.shape[1]) and np.isfinite(music).all()
    assert np.abs(music).max() <= CEILING + 1e-6
    assert np.abs(music.mean(axis=1)).max() < 2e-3
    assert np.sqrt(np.mean(music ** 2)) > 0.01


def test_the_output_is_music_not_filtered_noise(composed):
    """Notes carry the mix (the pitched tracks hold a good share of its energy) and its chroma
    sits on the key's scale, clearly more than the noise's does."""
    import copy

    import librosa
    from blendfx.effects.composer.mixing import band_eq, mix_bus, synthesize

    composer, noise, music = composed
    key = composer.last_arrangement.key

    def scale_share(audio):
        chroma = librosa.feature.chroma_cqt(y=audio.mean(axis=0), sr=SR, tuning=key.tuning_cents / 100.0)
        profile = chroma.sum(axis=1)
        return profile[list(key.scale)].sum() / profile.sum()

    assert scale_share(music) > 0.65 and scale_share(music) > scale_share(noise) + 0.05
    score = read_midi(composer.last_midi)
    dry = synthesize(score, SR, noise.shape[1])
    eq = score.meta["master_eq"]
    energy = {}
    for tonal in (True, False):
        keep = [i for i, p in enumerate(score.parts)
                if (p.meta["role"] not in ("drums", "hits", "texture")) == tonal]
        part = copy.copy(score)
        part.parts = [score.parts[i] for i in keep]
        bus = mix_bus(part, [dry[i] for i in keep], SR, noise.shape[1])
        bus = band_eq(bus, SR, np.asarray(eq["edges"]), np.asarray(eq["gains_db"]))
        energy[tonal] = float(np.mean(bus.astype(np.float64) ** 2))
    assert energy[True] / (energy[True] + energy[False]) > 0.35


@pytest.mark.parametrize("voice", ["pad", "epiano", "guitar", "vinyl", "organ", "timpani", "flute"])
def test_a_note_sounds_the_same_alone_or_sharing_its_tone(voice):
    """Notes with the same pitch, velocity and brightness share one rendering of their tone (as
    long as the longest of them): a note must not change because a longer one shares it."""
    from blendfx.effects.composer.synth import render_part

    short = np.array([[0.1, 0.4, 60.0, 90.0]])
    shared_tone = np.vstack([short, [[2.5, 5.0, 60.0, 90.0]]])
    alone = render_part(voice, short, SR, 6 * SR)[: 2 * SR]
    together = render_part(voice, shared_tone, SR, 6 * SR)[: 2 * SR]
    assert np.abs(alone).max() > 1e-3
    np.testing.assert_array_equal(alone, together)


def test_shared_curves_are_the_curves_made_alone_bit_for_bit():
    """Inside render_part, a part's notes share their vibrato, tremolo and decay curves (the
    longest made so far, sliced): every note's tone must equal the one made on its own."""
    from blendfx.effects.composer import synth

    lengths = [1, 7, 4097, 30000, 12345, 88200, 300]
    tones = {
        "strings": lambda n: synth._subtractive(440.0, n, 0.7, SR, None, unison=3, detune=14,
                                                vibrato=0.12, env_amount=2.0, tremolo=0.1),
        "epiano": lambda n: synth._fm(220.0, n, 0.8, SR, None, tine=0.25, tremolo=0.15),
        "vinyl": lambda n: synth._band_noise(300.0, n, 0.5, SR, None, lfo=0.3, seed=3),
    }
    alone = {(name, n): make(n) for name, make in tones.items() for n in lengths}
    with synth._shared_curves():
        for (name, n), expected in alone.items():
            np.testing.assert_array_equal(tones[name](n), expected)
        assert synth._curves.cache  # (the curves were shared)
    assert synth._curves.cache is None


# -- listening -------------------------------------------------------------------------------------
def _onset_ratio(noise: np.ndarray, beats: np.ndarray) -> float:
    """Noise onset strength (librosa, +-10 ms) at ``beats`` over its mean at shuffled times."""
    import librosa

    env = librosa.onset.onset_strength(y=noise.mean(axis=0), sr=SR, hop_length=441)
    env = np.maximum.reduce([env, np.roll(env, 1), np.roll(env, -1)])

    def at(times):
        return env[np.clip(np.round(times * 100).astype(int), 0, env.size - 1)].mean()

    rng = np.random.default_rng(0)
    duration = noise.shape[1] / SR
    shuffled = np.mean([at(rng.uniform(0, duration, beats.size)) for _ in range(300)])
    return float(at(beats) / shuffled)


def _best_grid_ratio(noise: np.ndarray) -> float:
    """How rhythmic a clip is, independently of the composer: the best 50-140 BPM grid's ratio."""
    import librosa

    env = librosa.onset.onset_strength(y=noise.mean(axis=0), sr=SR, hop_length=441)
    env = np.maximum.reduce([env, np.roll(env, 1), np.roll(env, -1)])
    best = 0.0
    for period in np.geomspace(100 * 60 / 140, 100 * 60 / 50, 120):
        k = np.arange(int((env.size - 1) / period))
        grid = np.round(np.arange(int(period))[:, None] + period * k[None, :]).astype(int)
        best = max(best, float(env[np.minimum(grid, env.size - 1)].mean(axis=1).max()))
    return best / env.mean()


def test_composed_beats_land_on_the_clock_ticks(composed):
    composer, noise, _ = composed
    beats = read_midi(composer.last_midi).beat_times(noise.shape[1] / SR)
    assert _onset_ratio(noise, beats) >= 1.5


def _grid_beats(noise: np.ndarray, prompt: str = "lofi") -> np.ndarray:
    """The beat times the composer would write (its listening and grid, without synthesis)."""
    style = style_from_prompt(prompt).style
    heard = listen(noise, SR, tempo_range=style.tempo, default_bpm=80.0)
    grid = arrange(heard, style, Key(0), np.random.default_rng(0)).grid
    score = read_midi(build_midi([], grid.tempo_map, time_signatures=grid.time_signatures,
                                 end_tick=grid.end_tick))
    return score.beat_times(noise.shape[1] / SR)


@pytest.mark.parametrize("cls,name", [("clock_tick", n) for n in CLOCK] + [("chainsaw", n) for n in CHAINSAW])
def test_beat_grid_locks_to_rhythmic_noise(cls, name):
    noise = clip(cls, name)
    beats = _grid_beats(noise)
    if _best_grid_ratio(noise) >= 2.0:  # a clear pulse: the beats land on it
        assert _onset_ratio(noise, beats) >= 1.5
    else:  # no 50-140 BPM grid reaches 2x: nothing to lock to, the grid is one steady tempo
        bpm = 60.0 / np.diff(beats)
        assert beats.size > 2 and np.ptp(bpm) < 0.5 and 50.0 <= bpm.mean() <= 140.0, bpm


def test_full_composer_locks_to_a_chainsaw():
    noise = clip("chainsaw", "1-19898-A")
    composer = Composer(prompt="rock", seed=0, progress=False)
    composer.process(noise, SR)
    beats = read_midi(composer.last_midi).beat_times(noise.shape[1] / SR)
    assert _onset_ratio(noise, beats) >= 1.5


def _hum(f0: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(5)
    x = sum(a * np.sin(2 * np.pi * f0 * h * t + h) for h, a in ((1, 0.3), (2, 0.15), (3, 0.08), (4, 0.04)))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)[None]


@pytest.mark.parametrize("f0,pc", [(120.0, 11), (100.0, 7)])
def test_hum_sets_the_key_and_the_tuning(f0, pc, tmp_path):
    composer = Composer(prompt="ambient", seed=0, progress=False)
    composer.process(_hum(f0), SR)
    key = composer.last_arrangement.key
    assert pc in (key.tonic, (key.tonic + 7) % 12), key.name
    # the piece is detuned so the hum sits exactly on its note
    expected = (12 * np.log2(f0 / 440.0) - round(12 * np.log2(f0 / 440.0))) * 100
    assert abs(key.tuning_cents - expected) < 3.0
    path = tmp_path / "hum.mid"
    composer.export_midi(path)
    pitches = np.concatenate([p.notes[:, 2] for p in read_midi(path).parts if not p.is_drum])
    assert np.allclose(pitches - np.round(pitches - expected / 100), expected / 100, atol=0.03)


def test_noise_without_pulse_takes_the_style_tempo():
    rng = np.random.default_rng(2)
    noise = (0.1 * rng.standard_normal(3 * SR)).astype(np.float32)[None]
    composer = Composer(prompt="hip hop", seed=0, progress=False)
    composer.process(noise, SR)
    lo, hi = STYLES["hiphop"].tempo
    assert not composer.last_listening.pulse.locked
    assert lo <= composer.last_listening.pulse.bpm <= hi


def test_registers_follow_the_noise_core():
    """A hiss gets brighter music than a rumble (same prompt and seed)."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(3)
    white = rng.standard_normal(3 * SR)
    low = sosfilt(butter(4, 400, fs=SR, output="sos"), white)
    high = sosfilt(butter(4, 3000, btype="highpass", fs=SR, output="sos"), white)

    def centroid(noise):
        music = Composer(prompt="pop", seed=0, progress=False).process(noise.astype(np.float32)[None], SR)
        spec = np.abs(np.fft.rfft(music.mean(axis=0))) ** 2
        freqs = np.fft.rfftfreq(music.shape[1], 1 / SR)
        return float(np.exp((np.log(freqs[1:]) * spec[1:]).sum() / spec[1:].sum()))

    assert centroid(high) > 2.0 * centroid(low)


def test_sections_vary_over_three_minutes():
    """3 minutes are a form (intro, verses, choruses, bridge, outro), not one bar looped."""
    duration, bpm = 180.0, 96.0
    period = 60.0 / bpm
    frames = int(duration * 100)
    edges = band_edges(SR)
    nb = edges.size - 1
    pulse = Pulse(period, np.arange(0, duration, period), 0, True, 3.0)
    core = Core(edges, np.ones(nb), np.ones(nb), np.ones(frames), np.full(frames, 0.15),
                np.zeros((0, 4)), np.ones((nb, frames), np.float32))
    tonality = Tonality(np.zeros(0), np.zeros(0), None, None, 0.0, np.zeros(12))
    heard = Listening(duration, SR, np.zeros(frames), pulse, tonality, core)
    arr = arrange(heard, STYLES["pop"], Key(2, "major"), np.random.default_rng(0))
    names = [s.name for s in arr.sections]
    assert {"intro", "verse", "chorus", "bridge", "outro"} <= set(names)
    assert len({s.progression for s in arr.sections}) >= 2
    bar = 4 * 480
    fingerprints = set()
    for b in range(arr.grid.bars):
        start = arr.grid.bar_tick(b)
        content = []
        for track in arr.tracks:
            inside = track.notes[(track.notes[:, 0] >= start) & (track.notes[:, 0] < start + bar)]
            content.append((track.role, tuple(map(tuple, (inside[:, [0, 2]] - [start, 0]).tolist()))))
        fingerprints.add(tuple(content))
    assert len(fingerprints) >= 12


# -- prompts ---------------------------------------------------------------------------------------
def test_prompt_words_and_fallback():
    assert style_from_prompt("dark lofi beats with piano, 80 bpm").style.name == "lofi"
    p = style_from_prompt("dark lofi beats with piano, 80 bpm")
    assert (p.mode, p.bpm, p.style.voices["chords"]) == ("minor", 80.0, "piano")
    assert style_from_prompt("pop punk").style.name == "punk"
    assert style_from_prompt("jaz").style.name == "jazz"  # a typo still finds its genre
    assert style_from_prompt("xyzzy flurble").style.name == "pop"
    empty = style_from_prompt("")  # no words: the fallback genre, nothing matched or set
    assert (empty.style.name, empty.matched, empty.mode, empty.bpm) == ("pop", "", None, None)


def test_bad_key_raises():
    with pytest.raises(ParameterError, match="key"):
        Composer(key="H minor")


# -- render_midi on other people's files -----------------------------------------------------------
def test_render_nottingham_without_tempo_plays_at_120_bpm():
    path = shared("midi", "nottingham", "ashover1.mid")
    score = read_midi(path)
    assert score.tempo_map.tolist() == [[0.0, 500000.0]]
    mid = mido.MidiFile(path)
    first_on = min(sum(m.time for m in t[: i + 1]) for t in mid.tracks
                   for i, m in enumerate(t) if m.type == "note_on" and m.velocity)
    assert score.parts[0].notes[:, 0].min() == pytest.approx(first_on / mid.ticks_per_beat * 0.5)
    sr = 22050
    audio = render_midi(path, sr)
    assert audio.shape[0] == 2 and audio.shape[1] >= int(mid.length * sr)
    assert audio.shape[1] <= int((mid.length + 2.0) * sr)
    assert np.abs(audio).max() <= CEILING + 1e-6 and np.sqrt(np.mean(audio ** 2)) > 0.01


def test_render_groove_drums_on_channel_10():
    path = shared("midi", "groove", "1_funk-groove1_138_beat_4-4.mid")
    score = read_midi(path)
    assert [p.is_drum for p in score.parts] == [True] and score.parts[0].channel == 9
    assert score.tempo_map[0, 1] == 434783
    sr = 22050
    audio = render_midi(path, sr)
    # the rendered kit hits where the notes are
    import librosa

    env = librosa.onset.onset_strength(y=audio.mean(axis=0), sr=sr, hop_length=220)
    hits = score.parts[0].notes[:, 0]
    at_hits = env[np.clip(np.round(hits * sr / 220).astype(int) + 1, 0, env.size - 1)].mean()
    assert at_hits > 2.0 * env.mean()


@pytest.mark.parametrize("stem", ["S00", "S01"])
def test_render_babyslakh_stems(stem):
    path = shared("stems", "babyslakh", "MIDI", f"{stem}.mid")
    score = read_midi(path)
    sr = 8000
    audio = render_midi(path, sr)
    assert audio.shape[1] >= int(score.length_s * sr)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= CEILING + 1e-6
    assert np.sqrt(np.mean(audio ** 2)) > 0.005


def test_render_midi_errors(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        render_midi(tmp_path / "missing.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(ParameterError, match="cannot read"):
        render_midi(bad)
    with pytest.raises(ParameterError, match="sample_rate"):
        render_midi(shared("midi", "groove", "1_funk-groove1_138_beat_4-4.mid"), 0)


# -- masking ---------------------------------------------------------------------------------------
def test_composer_masks_the_core_cheaper_than_real_music():
    """The point of blendfx: on a barking dog the composed music hides half the core's energy at
    a lower loudness cost than a real track, and near the noise's own cost."""
    from blendfx.effects.blend.metrics import cost_to_mask_lu, noise_core

    noise = clip("dog_bark", "1-100032-A")
    core = noise_core(noise, SR)
    music = Composer(prompt="lofi", seed=0, progress=False).process(noise, SR)
    track, _ = blendfx.read_audio(shared("music", "vibe_ace.ogg"), offset=10.0, duration=noise.shape[1] / SR)
    composed = cost_to_mask_lu(noise, music, SR, core=core)
    real = cost_to_mask_lu(noise, track, SR, core=core)
    itself = cost_to_mask_lu(noise, noise, SR, core=core)
    assert composed < 20.0 and composed < real - 5.0 and composed < itself + 3.0


def test_masking_cost_with_precomputed_core_cells_is_the_same():
    """auto_balance scores every trial mix against core cells computed once: the same cost,
    bit for bit, as reading them from the core each time; the cells are ``core[core > 0]``."""
    from blendfx.effects.composer.mix_design import core_cells, k_weights, masking_cost, spreading_matrix

    rng = np.random.default_rng(3)
    edges = band_edges(SR)
    centers = np.sqrt(edges[:-1] * edges[1:])
    core = rng.random((centers.size, 400)) * (rng.random((centers.size, 400)) > 0.6)
    core = core[:, ::2]  # not C-contiguous: the flat indices must still follow C order
    mix = rng.random(core.shape)
    spread, weights = spreading_matrix(centers), k_weights(SR, centers)
    index, power = core_cells(core)
    np.testing.assert_array_equal(power, core[core > 0])
    np.testing.assert_array_equal(np.unravel_index(index, core.shape), np.nonzero(core > 0))
    costs = set()
    for match in (0.0, 0.7):
        plain = masking_cost(mix, core, spread, weights, match=match)
        assert np.isfinite(plain)
        assert masking_cost(mix, core, spread, weights, match=match, cells=(index, power)) == plain
        costs.add(plain)
    assert len(costs) == 2  # the match changes the cost
    # a mix 6 dB louder is 6 dB louder but needs 6 dB less gain: the same cost (to the median's
    # 0.05 dB resolution)
    louder = masking_cost(mix * 4.0, core, spread, weights, cells=(index, power))
    assert louder == pytest.approx(masking_cost(mix, core, spread, weights), abs=0.06)
    empty = np.zeros_like(core)
    assert masking_cost(mix, empty, spread, weights, cells=core_cells(empty)) == 0.0
    assert masking_cost(mix, empty, spread, weights) == 0.0


def test_build_midi_writes_controllers_in_order_clamped_to_the_midi_range():
    from blendfx.effects.composer.midi import TrackSpec

    controls = np.array([[0, 7, 200], [0, 11, -5], [480, 11, 64], [240, 10, 127], [240, 7, 0]])
    notes = np.array([[0, 480, 60, 100], [240, 720, 64, 300]])
    mid = build_midi([TrackSpec("keys", 0, 4, notes, controls)], np.array([[0, 500000]]))
    got = [(m.control, m.value) for m in mid.tracks[1] if m.type == "control_change"]
    # stable by tick, controllers before notes at the same tick; values clamped to 0..127
    assert got == [(7, 127), (11, 0), (10, 127), (7, 0), (11, 64)]
    velocities = [m.velocity for m in mid.tracks[1] if m.type == "note_on"]
    assert velocities == [100, 127]
    score = read_midi(mid)
    assert score.parts[0].controls[7][:, 1].tolist() == [127, 0]


def test_gc_paused_is_reentrant_across_threads_and_restores_the_collector():
    """build_midi/read_midi hold off the cyclic collector (full collections over ~50 000
    messages found nothing to free); overlapping pauses on two threads end with it running."""
    import gc
    import threading

    from blendfx.threads import gc_paused

    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=other)
    with gc_paused():
        worker.start()
        assert inside.wait(5) and not gc.isenabled()
    assert not gc.isenabled()  # the other thread's pause still holds
    release.set()
    worker.join()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()
    build_midi([], np.array([[0, 500000]]))
    assert gc.isenabled()


def test_composer_on_one_core_starts_no_thread_and_writes_the_same() -> None:
    """Held to one core (a farm's render of ``jobs=1``), the Composer listens, mixes and masters
    in the caller's thread, and writes exactly what it writes on every core."""
    from blendfx.threads import core_limit

    noise = np.random.default_rng(5).normal(0, 0.1, (2, 6 * SR)).astype(np.float32)
    want = Composer(prompt="pop", seed=2, progress=False).process(noise, SR)
    with threads_started() as started, core_limit(1):
        got = Composer(prompt="pop", seed=2, progress=False).process(noise, SR)
    assert started == []
    np.testing.assert_array_equal(got, want)
