"""A Chain of blendfx effects and pedalboard plugins on a noise, saved as a preset.

    python examples/chain_fx.py [NOISE.wav] -o out/chain.wav

Without NOISE, the demo's synthesized train is used. Writes the processed audio and the chain as
a hand-editable TOML preset beside it.
"""

import argparse
from pathlib import Path

import blendfx
import pedalboard
from blendfx.effects import Ducker, Utility
from blendfx.render.demo import synthesize_train

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("noise", nargs="?", help="input audio (default: a synthesized train)")
parser.add_argument("-o", "--output", default="out/chain.wav")
parser.add_argument("--duration", type=float, default=10.0, help="seconds of synthesized train")
args = parser.parse_args()

if args.noise:
    audio, sr = blendfx.read_audio(args.noise)
else:
    sr = 44100
    audio = synthesize_train(args.duration, sr)

chain = blendfx.Chain([
    pedalboard.HighpassFilter(cutoff_frequency_hz=120),    # native plugins...
    pedalboard.Compressor(threshold_db=-24, ratio=3),
    Ducker(depth_db=6, threshold_db=-20),                  # ...a blendfx effect keyed by the input
    Utility(gain_db=-3.0, pan=0.3),
    pedalboard.Reverb(room_size=0.4, wet_level=0.2),
])
out = chain(audio, sr)

path = Path(args.output)
blendfx.write_audio(path, out, sr)
preset = blendfx.save_preset(chain, path.with_suffix(".toml"), description="example chain")
assert blendfx.load_preset(preset) == chain  # the preset loads back equal
print(f"{path} ({out.shape[-1] / sr:.1f} s), preset {preset}")
