"""REAPER MIDI tracks played by a real VST3 instrument: the blendfx test synth
(``tests/render/plugins/blendfx_test_synth``, built here from Debian's ``dpf-source``: the
DISTRHO Plugin Framework), found through ``BLENDFX_PLUGIN_PATH``, with the state the project
saved. No free VST3 instrument is packaged for Debian 12, hence the build; the tests skip, saying
why, where ``dpf-source``, ``make`` or a C++ compiler is missing (``.ci/run`` installs
``dpf-source``).

The synth's output is known in closed form (see its source): each note is a sine (waveform 0)
or a naive saw (1) at the note's pitch, amplitude ``10^(gain/20) * velocity / 127`` (gain in
dB, -6 by default), a 2 ms linear attack from the note-on's sample and a linear release from
the note-off's (``release`` s, 0.02 by default); silence (exact zeros) otherwise.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import pedalboard
import pytest
from blendfx.render.instruments import load_plugin
from blendfx.render.reaper import import_reaper

from .test_reaper_items import reaper_vst3_block, render
from .test_reaper_midi import RAMPS, SR, TEMPO_ENV, beats_reference, midi_item, onsets, rpp, track

SOURCE = Path(__file__).parent / "plugins" / "blendfx_test_synth"
NAME = "blendfx_test_synth"
#: How REAPER names it in a track's FX chain (its VST3 name and vendor).
REAPER_NAME = "VST3i: blendfx test synth (blendfx)"
DEFAULT_GAIN_DB = -6.0
ATTACK_S, RELEASE_S = 0.002, 0.020


def _dpf_path() -> Path | None:
    for folder in (os.environ.get("DPF_PATH"), "/usr/share/dpf"):
        if folder and (Path(folder) / "Makefile.plugins.mk").is_file():
            return Path(folder)
    return None


@pytest.fixture(scope="session")
def built_synth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    """The folder holding ``blendfx_test_synth.vst3``, built once per source (cached by the
    hash of its source and of DPF's under pytest's cache folder, so reruns take no build)."""
    dpf = _dpf_path()
    if dpf is None:
        pytest.skip("dpf-source is not installed (the DISTRHO Plugin Framework, to build the "
                    "test VST3 instrument: apt-get install dpf-source; .ci/run does)")
    make = shutil.which("make")
    cxx = shutil.which((os.environ.get("CXX") or "g++").split()[0])
    if make is None or cxx is None:
        pytest.skip(f"no {'make' if make is None else 'C++ compiler'} to build the test VST3 "
                    f"instrument")
    digest = hashlib.sha256(str(dpf).encode())
    for path in [*sorted(SOURCE.iterdir()), dpf / "Makefile.plugins.mk",
                 dpf / "Makefile.base.mk", dpf / "distrho/src/DistrhoPluginVST3.cpp"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    cache = getattr(request.config, "cache", None)
    root = (cache.mkdir("blendfx-test-synth") if cache is not None
            else tmp_path_factory.mktemp("blendfx-test-synth"))
    built = root / digest.hexdigest()[:20]
    if not (built / f"{NAME}.vst3").is_dir():
        work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            run = subprocess.run(
                [make, "-s", "-j2", "-C", str(SOURCE), f"DPF_PATH={dpf}",
                 f"DPF_TARGET_DIR={work / 'bin'}", f"DPF_BUILD_DIR={work / 'build'}"],
                capture_output=True, text=True, timeout=600)
            if run.returncode != 0:
                pytest.fail(f"building the test synth failed:\n{run.stdout}\n{run.stderr}")
            try:  # (another test worker may have built it meanwhile: either is fine)
                os.rename(work / "bin", built)
            except OSError:
                if not (built / f"{NAME}.vst3").is_dir():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return built


@pytest.fixture
def plugin_path(built_synth: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test synth's folder in ``BLENDFX_PLUGIN_PATH``; its bundle's path."""
    monkeypatch.setenv("BLENDFX_PLUGIN_PATH", str(built_synth))
    return built_synth / f"{NAME}.vst3"


def dpf_state(**parameters: float) -> bytes:
    """A DPF plug-in's VST3 component state, as DPF writes it (``getState``): NUL-separated
    ``__dpf_parameters_begin__``, symbol/value pairs, ``__dpf_parameters_end__``, then 0xFE."""
    fields = ["__dpf_parameters_begin__"]
    for symbol, value in parameters.items():
        fields += [symbol, f"{value:g}"]
    fields.append("__dpf_parameters_end__")
    return b"\0".join(f.encode() for f in fields) + b"\0\xfe\0"


def hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def pitch_hz(x: np.ndarray, sr: float) -> float:
    """A steady tone's frequency from its upward zero crossings (interpolated)."""
    s = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    frac = s + x[s] / (x[s] - x[s + 1])
    return (len(frac) - 1) / ((frac[-1] - frac[0]) / sr)


# -- the plug-in ---------------------------------------------------------------------------------
def test_loading_a_fast_math_plugin_keeps_subnormal_numbers(plugin_path):
    """DPF builds with -ffast-math, whose loader sets flush-to-zero for the loading thread (and
    every thread it starts): blendfx's load_plugin gives the thread its floating-point mode
    back, so numpy keeps subnormal numbers afterwards, in this thread and in new ones."""
    import threading

    def subnormals_kept() -> bool:
        return bool(np.float64(2.2250738585072014e-308) / 4 != 0)

    assert subnormals_kept()
    load_plugin(plugin_path)
    seen: list[bool] = []
    worker = threading.Thread(target=lambda: seen.append(subnormals_kept()))
    worker.start()
    worker.join()
    assert subnormals_kept() and seen == [True]


def test_the_test_synth_loads_as_an_instrument_and_plays_its_closed_form(plugin_path):
    synth = load_plugin(plugin_path)  # (pedalboard.load_plugin, see below)
    assert isinstance(synth, pedalboard.VST3Plugin)
    assert synth.is_instrument and not synth.is_effect
    assert synth.name == "blendfx test synth"
    # DPF's VST3s take MIDI controllers as 2080 hidden parameters: pedalboard, which reads the
    # text of every parameter it wraps at 1001 values, is told to leave them be (a DPF
    # instrument took 30 s to load, not 0.1 s)
    assert len(synth._parameters) >= 2 + 16 * 130
    assert set(synth.parameters) == {"gain_db", "waveform", "release_s"}
    sr = 48000
    notes = [mido.Message("note_on", note=69, velocity=127, time=0.25),
             mido.Message("note_off", note=69, time=0.75)]
    y = synth(notes, duration=1.0, sample_rate=sr, num_channels=2)
    assert y.shape == (2, sr) and np.array_equal(y[0], y[1])
    loud = np.flatnonzero(y[0])
    assert abs(loud[0] - 0.25 * sr) <= 2  # (the first sample of a sine is 0)
    assert abs(loud[-1] - (0.75 + RELEASE_S) * sr) <= 2
    steady = y[0, int(0.3 * sr):int(0.7 * sr)]
    assert pitch_hz(steady, sr) == pytest.approx(440.0, rel=1e-4)
    assert np.abs(steady).max() == pytest.approx(10 ** (DEFAULT_GAIN_DB / 20), rel=1e-3)


# -- a REAPER project on the instrument ---------------------------------------------------------
def note_events(notes: list[tuple[float, float, int, int]]) -> list[tuple[int, int, int, int]]:
    """REAPER ``E`` events (delta ticks at 960 per quarter) of ``(start_qn, length_qn, key,
    velocity)`` notes that do not overlap, in order."""
    out, at = [], 0
    for start, length, key, vel in notes:
        on, off = round(start * 960), round((start + length) * 960)
        out += [(on - at, 0x90, key, vel), (off - on, 0x80, key, 0)]
        at = off
    return out


def test_midi_items_render_through_the_real_instrument_on_the_tempo_map(tmp_path, plugin_path):
    """Three MIDI items on a ramped tempo map (100 -> 140 BPM, then 80 -> 120), at 48 kHz: every
    note starts within 1 ms of the tempo map, at its pitch and velocity, and stops at its
    note-off, or at its item's end for a note held past it; the reports name the plug-in."""
    sr, end = 48000, 20.0
    first = [(k * 1.5, 0.5, 60 + 2 * k, 40 + 8 * k) for k in range(10)]  # 0.5 s .. ~7.2 s
    second = [(0.0, 1.0, 72, 127), (2.0, 8.0, 67, 100)]  # the last held past the item's end
    last = [(0.0, 4.0, 84, 90)]  # (held to the end of the project)
    items = (midi_item(0.5, 14.0, note_events(first)) + midi_item(16.0, 2.5, note_events(second))
             + midi_item(19.0, 1.0, note_events(last)))
    fx = reaper_vst3_block(REAPER_NAME, b"", file=f"{NAME}.vst3")  # (no state: defaults)
    proj = tmp_path / "p"
    proj.mkdir()
    text = rpp(track("Lead", items, fx=fx), "TEMPO 100 4 4", TEMPO_ENV)
    (proj / "p.rpp").write_text(text.replace(f"SAMPLERATE {SR}", f"SAMPLERATE {sr}"))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    assert not result.stand_ins and not any("stand-in" in w for w in result.warnings)
    (entry,) = result.tracks
    assert entry["instrument"]["plugin"] == REAPER_NAME
    assert f"instrument: blendfx test synth on 'Lead': {plugin_path}, with its defaults" in (
        result.table().splitlines())
    out, stems = render(proj, tmp_path)
    played = out.report["tracks"][0]["reports"][0]
    assert played["effect"] == "instrument" and played["plugin"] == str(plugin_path)
    assert "stand_in" not in played and played["name"] == "blendfx test synth"
    y = stems["Lead"]
    assert out.report["sample_rate"] == sr and y.shape[1] == round(end * sr)  # (the last item's)
    # when each note should start and stop, from an independent integration of the tempo map
    # (the tempo map integrated as beats_reference does, once: a midpoint sum at 0.1 ms steps)
    dt = 1e-4
    mid = np.arange(0.0, end + 1.0, dt) + dt / 2
    starts, bpms = np.array([p[0] for p in RAMPS]), np.array([p[1] for p in RAMPS])
    k = np.searchsorted(starts, mid, side="right") - 1
    nxt = np.minimum(k + 1, len(RAMPS) - 1)
    ramp = np.array([p[2] for p in RAMPS])[k] & (nxt != k)
    slope = np.where(ramp, (bpms[nxt] - bpms[k]) / np.maximum(starts[nxt] - starts[k], dt), 0)
    beats = np.concatenate([[0.0], np.cumsum((bpms[k] + slope * (mid - starts[k])) * dt / 60)])
    edges = np.arange(len(beats)) * dt
    for t in (0.5, 7.3, 12.1, 16.0):
        assert np.interp(t, edges, beats) == pytest.approx(beats_reference(RAMPS, t), abs=1e-6)

    def seconds(q: float) -> float:
        return float(np.interp(q, beats, edges))

    want = []
    for position, length, notes in ((0.5, 14.0, first), (16.0, 2.5, second), (19.0, 1.0, last)):
        q = beats_reference(RAMPS, position)
        want += [(seconds(q + s), min(seconds(q + s + n), position + length), key, vel)
                 for s, n, key, vel in notes]
    assert want[11][1] == 18.5 and want[12][1] == end  # (cut at their items' ends)
    found = onsets(y) / sr
    assert len(found) == len(want)
    assert np.abs(found - [w[0] for w in want]).max() < 1e-3
    amp = 10 ** (DEFAULT_GAIN_DB / 20)
    for start, stop, key, vel in want:
        a, b = int((start + 0.01) * sr), int((stop - 0.005) * sr)
        held = y[0, a:b]
        assert pitch_hz(held, sr) == pytest.approx(hz(key), rel=1e-3), key
        assert np.abs(held).max() == pytest.approx(amp * vel / 127, rel=2e-3), key
        if stop < end:  # silent from its release's end to the next note
            off = int((stop + RELEASE_S) * sr) + 48
            assert np.abs(y[:, off:off + 2400]).max() == 0, key
            assert np.abs(y[0, off - 96:off - 48]).max() > 0, key  # (the release sounds)
        else:  # REAPER ends the render at the end of the last item: the release is cut
            assert np.abs(y[0, -48:]).max() > 0.5 * amp * vel / 127


def test_the_project_s_saved_state_sets_the_instrument(tmp_path, plugin_path):
    """The VST3 state REAPER saved (gain -20 dB, saw) plays; a chunk that cannot be read is said
    at import and the instrument plays with its defaults (-6 dB, sine), as the report says. A
    new build of the plug-in renders again, not from the render cache."""
    notes = midi_item(0.0, 1.0, note_events([(0.0, 1.5, 57, 127)]))  # 220 Hz for 0.75 s
    saved = reaper_vst3_block(REAPER_NAME, dpf_state(gain=-20, waveform=1), file=f"{NAME}.vst3")
    broken = saved.replace(saved.splitlines()[3].strip(), "bm90IGEgY2h1bms=")  # (not a chunk)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(track("Saved", notes, fx=saved)
                                    + track("Broken", notes, fx=broken)))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    by = {t["name"]: t["instrument"] for t in result.tracks}
    assert "state" in by["Saved"] and "state" not in by["Broken"]
    table = result.table().splitlines()
    assert f"instrument: blendfx test synth on 'Saved': {plugin_path}, with the project's " \
           f"state" in table
    assert any("plug-in states not read" in w and "blendfx test synth on 'Broken'" in w
               for w in result.warnings)
    out, stems = render(proj, tmp_path)
    reports = {t["name"]: t["reports"][0] for t in out.report["tracks"]}
    assert reports["Saved"]["state"] == "applied"
    assert reports["Broken"]["state"] == "none in the project (defaults)"
    sr = SR
    for name, gain_db, crest in (("Saved", -20.0, math.sqrt(3)), ("Broken", DEFAULT_GAIN_DB,
                                                                  math.sqrt(2))):
        held = stems[name][0, int(0.05 * sr):int(0.7 * sr)]
        peak = 10 ** (gain_db / 20)
        assert np.abs(held).max() == pytest.approx(peak, rel=2e-3), name
        # a saw's peak is sqrt(3) times its RMS, a sine's sqrt(2)
        assert np.abs(held).max() / np.sqrt(np.mean(held ** 2)) == pytest.approx(crest,
                                                                                rel=0.02), name
        assert pitch_hz(held, sr) == pytest.approx(220.0, rel=1e-3), name
    out, _ = render(proj, tmp_path)  # again: the stems come from the render cache...
    assert all(t["cached"] for t in out.report["tracks"])
    binary = next(f for f in (plugin_path / "Contents").glob("*/*") if f.is_file())
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # (a new build of it)
    out, _ = render(proj, tmp_path)  # ...unless the plug-in changed since
    assert not any(t["cached"] for t in out.report["tracks"])


def test_controllers_reach_the_instrument_on_their_sample(tmp_path, plugin_path):
    """A VST3 host passes controllers as parameter changes, which pedalboard applies at the
    start of its 8192-sample block: the instrument renders in pieces that start at each, so an
    all-sound-off (CC 120) silences a note within 1 ms of its time, and a stream of
    mod-wheel moves (CC 1, which the synth ignores) leaves a held note's sine unbroken."""
    cut = 1317  # ticks: 0.6859 s at 120 BPM, 5673 samples into the host's 4th block
    events = [(0, 0x90, 69, 127), (cut, 0xB0, 120, 0), (1920 - cut, 0x80, 69, 0),
              (1920, 0x90, 81, 127)]  # (a second note at 2 s, held 1 s under the mod wheel)
    events += [(0 if k == 0 else 30, 0xB0, 1, k % 128) for k in range(64)]
    events += [(1920 - 64 * 30 + 30, 0x80, 81, 0)]
    proj = tmp_path / "p"
    proj.mkdir()
    fx = reaper_vst3_block(REAPER_NAME, b"", file=f"{NAME}.vst3")
    (proj / "p.rpp").write_text(rpp(track("Lead", midi_item(0.0, 3.5, events), fx=fx)))
    import_reaper(proj / "p.rpp", proj / "s.toml")
    out, stems = render(proj, tmp_path)
    assert "stand_in" not in out.report["tracks"][0]["reports"][0]
    y = stems["Lead"][0]
    silent_from = np.flatnonzero(y[:SR])[-1] + 1
    assert abs(silent_from / SR - cut / 960 * 0.5) < 1e-3
    assert np.abs(y[silent_from:2 * SR]).max() == 0
    start = 2 * SR  # the second note: a sine from its first sample, past its 2 ms attack
    k = np.arange(int(0.01 * SR), SR - int(0.01 * SR))
    want = 10 ** (DEFAULT_GAIN_DB / 20) * np.sin(2 * np.pi * hz(81) * k / SR)
    assert np.abs(y[start + k] - want).max() < 1e-4


def test_an_instrument_s_release_rings_past_its_last_note(tmp_path, plugin_path):
    """The project's state gives the synth a 3 s release: the last note of a track rings out
    its whole release (REAPER plays an instrument's tail past its items), to the session's
    end at most, where the stand-in voice's guess would have cut it."""
    sr = SR
    pad = reaper_vst3_block(REAPER_NAME, dpf_state(gain=-6, waveform=0, release=3),
                            file=f"{NAME}.vst3")
    short = reaper_vst3_block(REAPER_NAME, b"", file=f"{NAME}.vst3")
    proj = tmp_path / "p"
    proj.mkdir()
    note = note_events([(0.0, 1.0, 69, 127)])  # 0.5 s at 120 BPM
    (proj / "p.rpp").write_text(rpp(track("Pad", midi_item(0.0, 1.0, note), fx=pad)
                                    + track("Later", midi_item(7.0, 1.0, note), fx=short)))
    import_reaper(proj / "p.rpp", proj / "s.toml")
    out, stems = render(proj, tmp_path)
    assert out.report["tracks"][0]["reports"][0]["state"] == "applied"
    y = stems["Pad"][0]
    assert y.shape[0] == 8 * sr  # (the project ends with its last item)
    amp = 10 ** (-6 / 20)
    for t in (1.0, 2.0, 3.0, 3.4):  # the linear release, 3 s from the note-off at 0.5 s
        window = np.abs(y[int(t * sr):int((t + 0.01) * sr)])  # (4.4 periods)
        assert window.max() == pytest.approx(amp * (1 - (t - 0.5) / 3), rel=0.02, abs=2e-3), t
    assert np.abs(y[int(3.52 * sr):]).max() == 0  # rung out
