"""Benchmark importing and rendering a REAPER project.

The project (written by this script): 200 items on 12 tracks in folders three deep, 120 s long,
on a tempo map with linear ramps and a meter change: 8 instrument tracks (plug-ins that are not
installed here: Kontakt, Absynth, Reaktor... so stand-in voices play) with 22 MIDI items each
(in-project ``<SOURCE MIDI`` data, a few looped, every fourth with its own volume, pan and
fades), and 24 audio items (WAVs written beside it) with fades, playback rates (with and
without preserved pitch), take offsets and loops (every third).

Figures:

- ``import_s``: the median wall time of ``import_reaper`` (parse, place the MIDI on the tempo
  map, write the session and its MIDI files) over ``--repeats`` runs, and the fastest. Goal: < 1 s.
- ``realtime_factor``: project seconds per wall-clock second of ``render_session`` on the
  imported session (no cache, no figure); ``cpu_realtime_factor`` divides by the CPU seconds
  (the comparable figure on a shared machine). Goal: >= 20.
- the load average before and after.

Usage::

    python benchmarks/reaper_import.py [--repeats 5] [--seconds 120]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from blendfx import write_audio
from blendfx.render.reaper import import_reaper
from blendfx.render.renderer import render_session
from blendfx.render.session import load_session

SR = 44100
PLUGINS = [("Strings", "VST3i: Kontakt 7 (Native Instruments)"),
           ("Atmos", "VSTi: Absynth 5 (Native Instruments GmbH)"),
           ("Low end", "VSTi: Reaktor 6 (Native Instruments GmbH)"),
           ("Keys", "VST3i: Keyscape (Spectrasonics)"),
           ("Lead", "VST3i: Serum (Xfer Records)"),
           ("Gtr", "VST3i: Ample Guitar (Ample Sound)"),
           ("Drums", "VSTi: MT-PowerDrumKit (MANDA AUDIO)"),
           ("Bells", "VST3i: Kontakt 7 (Native Instruments)")]


def midi_events(rng: np.random.Generator, drums: bool, loop: bool) -> str:
    lines, tick = [], 0
    for _ in range(16):
        key = int(rng.choice([36, 38, 42])) if drums else int(rng.integers(40, 80))
        status = 0x99 if drums else 0x90
        lines.append(f"        E {0 if not lines else 480 - 240} {status:02x} {key:02x} 64\n")
        lines.append(f"        E 240 {status - 0x10:02x} {key:02x} 00\n")
        tick += 480
    lines.append(f"        E {1920 if loop else 240} b0 7b 00\n")
    return "".join(lines)


def write_project(folder: Path, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8 * SR)) / SR
    for k in range(4):
        x = 0.2 * np.sin(2 * np.pi * (220 * (k + 1)) * t) * np.exp(-t / 3)
        write_audio(folder / "audio" / f"a{k}.wav", x[None].astype(np.float32), SR)
    out = [f'<REAPER_PROJECT 0.1 "6.11/x64" 0\n  SAMPLERATE {SR} 0 0\n  TEMPO 110 4 4\n',
           "  <TEMPOENVEX\n    PT 0 110 0\n    PT 30 130 1 262147\n    PT 60 96 0\n"
           "    PT 90 120 1 262148\n  >\n"]

    def track(name: str, isbus: str, body: str, fx: str = "") -> None:
        out.append(f'  <TRACK\n    NAME "{name}"\n    VOLPAN 0.8 0 -1 -1 1\n    MUTESOLO 0 0 0\n'
                   f"    ISBUS {isbus}\n    MAINSEND 1 0\n{fx}{body}  >\n")

    track("Band", "1 1", "")
    track("Instruments", "1 1", "")
    track("Synths", "1 1", "")
    step = seconds / 22
    for i, (name, plug) in enumerate(PLUGINS):
        items = []
        for k in range(22):
            loop = k % 5 == 0
            # every fourth item with its own volume, pan and fades
            shaped = ("      VOLPAN 0.7 0.3 1 -1\n      FADEIN 0 0.3 0 1 0 0\n"
                      "      FADEOUT 2 1 0 1 0 0\n" if k % 4 == 1 else "      VOLPAN 1 0 1 -1\n")
            items.append(
                f"    <ITEM\n      POSITION {k * step:.6f}\n      LENGTH {step * 0.9:.6f}\n"
                f"      LOOP {int(loop)}\n{shaped}      <SOURCE MIDI\n"
                f"        HASDATA 1 960 QN\n{midi_events(rng, name == 'Drums', loop)}      >\n"
                f"    >\n")
        fx = f'    <FXCHAIN\n    <VST "{plug}" x.dll 0 "" 0<00> ""\n      AAAA\n    >\n    >\n'
        isbus = "2 -1" if i == 3 else ("0 0" if i != len(PLUGINS) - 1 else "2 -1")
        track(name, isbus, "".join(items), fx)
    for j in range(4):
        items = []
        for k in range(6):
            rate = ("PLAYRATE 1.5 0 0 -1 0 0.0025" if k % 3 == 1 else
                    "PLAYRATE 0.8 1 0 -1 0 0.0025" if k % 3 == 2 else "PLAYRATE 1 1 0 -1 0 0.0025")
            # every third item loops its 8 s file over 12 s, from a take offset
            length, loop = (12, 1) if k % 3 == 0 else (4, 0)
            items.append(
                f"    <ITEM\n      POSITION {k * seconds / 6:.6f}\n      LENGTH {length}\n"
                f"      LOOP {loop}\n"
                f"      FADEIN 1 0.2 0 1 0 0\n      FADEOUT 1 0.5 0 1 0 0\n      SOFFS 0.5\n"
                f"      {rate}\n      <SOURCE WAVE\n        FILE \"audio/a{j}.wav\"\n      >\n"
                f"    >\n")
        track(f"Audio {j + 1}", "2 -1" if j == 3 else "0 0", "".join(items))
    out.append(">\n")
    path = folder / "project.rpp"
    path.write_text("".join(out))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        project = write_project(folder, args.seconds)
        items = project.read_text().count("<ITEM")
        times = []
        load_before = os.getloadavg()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = import_reaper(project, folder / "session.toml")
                times.append(time.perf_counter() - t0)
        session = load_session(folder / "session.toml")
        t0, c0 = time.perf_counter(), time.process_time()
        out = render_session(session, folder / "out", progress=False, figure=False, cache=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        duration = out.report["duration_s"]
        figures = {
            "items": items, "session_tracks": len(result.tracks), "buses": len(result.buses),
            "stand_ins": len(result.stand_ins),
            "import_s": round(statistics.median(times), 4), "import_min_s": round(min(times), 4),
            "render_s": round(wall, 3), "render_cpu_s": round(cpu, 3), "duration_s": duration,
            "realtime_factor": round(duration / wall, 2),
            "cpu_realtime_factor": round(duration / cpu, 2),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
        }
    print(result.table().splitlines()[-1 - len(result.stand_ins) - len(result.effects)
                                      - len(result.not_rendered)])
    print(f"import of a {items}-item project: {figures['import_s']} s (median of {args.repeats})")
    print(f"render: {duration:.1f} s in {wall:.2f} s ({figures['realtime_factor']}x realtime, "
          f"{figures['cpu_realtime_factor']}x per CPU second)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
