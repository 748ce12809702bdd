"""Write a small session by hand (stems + manifest) and render it: stems, mix, report.

    python examples/render_session.py -o out/session

Two stems (a rain recording, or a synthesized train, and a pad), one ducked under the other
through a sidechain, mastered to -16 LUFS with a -1 dBTP ceiling.
"""

import argparse
import json
from pathlib import Path

import blendfx
import numpy as np
from blendfx.render import render_session
from blendfx.render.demo import synthesize_train
from blendfx.render.session import save_session

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("-o", "--output", default="out/session")
parser.add_argument("--duration", type=float, default=8.0)
args = parser.parse_args()

out = Path(args.output)
folder = out / "session"
sr = 44100
t = np.arange(int(args.duration * sr)) / sr
pad = 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
blendfx.write_audio(folder / "train.flac", synthesize_train(args.duration, sr), sr)
blendfx.write_audio(folder / "pad.wav", pad.astype(np.float32), sr)

manifest = {
    "session": {"name": "example", "sample_rate": sr, "tempo": 96},
    "master": {"target_lufs": -16.0, "true_peak_dbtp": -1.0, "format": "wav", "bit_depth": 24},
    "tracks": [
        {"name": "train", "file": "train.flac", "role": "noise", "gain_db": -3.0},
        {"name": "pad", "file": "pad.wav", "role": "music", "offset_bars": 1, "pan": 0.2,
         "fade_in": 0.5, "sidechain": "train",
         "chain": {"type": "Chain", "plugins": [
             {"type": "Ducker", "depth_db": 4.0, "threshold_db": -30.0},
             {"type": "pedalboard.Reverb", "room_size": 0.6, "wet_level": 0.3}]}},
    ],
}
session = save_session(manifest, folder / "session.toml", header="an example session")
result = render_session(session, out, progress=False)
print(json.dumps({"mix": str(result.mix), "stems": {k: str(v) for k, v in result.stems.items()},
                  "output_lufs": result.report["master"]["output_lufs"]}, indent=1))
