"""Make a dry stem sound as if recorded where a reference recording was (the Stylizer).

    python examples/stylize_stem.py STEM.wav REFERENCE.wav -o out/stylized.wav

Without STEM, a short synthesized melody is used. The Stylizer estimates the reference's
reverberation, colouration and ambient bed, and applies them to the stem.
"""

import argparse
import json
from pathlib import Path

import blendfx
import numpy as np
from blendfx.effects import Stylizer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("stem", nargs="?", help="the dry stem (default: a synthesized melody)")
parser.add_argument("reference", help="a recording of the place")
parser.add_argument("-o", "--output", default="out/stylized.wav")
parser.add_argument("--amount", type=float, default=0.9)
args = parser.parse_args()

reference, sr = blendfx.read_audio(args.reference)
if args.stem:
    stem, _ = blendfx.read_audio(args.stem, sample_rate=sr)
else:  # plucked notes with pauses, dry
    t = np.arange(int(4 * sr)) / sr
    notes = [261.6, 329.6, 392.0, 523.3]
    stem = sum(np.sin(2 * np.pi * f * t) * np.exp(-8 * ((t - i) % 4)) * (t >= i)
               for i, f in enumerate(notes)).astype(np.float32) * 0.3

stylizer = Stylizer(amount=args.amount, seed=0)
out = stylizer(stem, sr, sidechain=reference)
blendfx.write_audio(Path(args.output), out, sr)
print(Path(args.output), json.dumps(stylizer.last_report, default=str)[:300])
