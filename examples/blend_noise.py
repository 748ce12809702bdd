"""Blend a noise recording into music written for it (BNMusic), and print the blend report.

    python examples/blend_noise.py NOISE.wav -o out/blended.wav --prompt "jazz trio"

The Blend effect extracts the noise's energy core, has the procedural Composer write music
aligned to it (no model weights), and amplifies the music just enough to cover the core.
"""

import argparse
from pathlib import Path

import blendfx
from blendfx.effects import Blend

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("noise", help="the noise recording")
parser.add_argument("-o", "--output", default="out/blended.wav")
parser.add_argument("--prompt", default="lofi hip hop, mellow keys")
parser.add_argument("--seconds", type=float, default=None, help="use only the first N seconds")
args = parser.parse_args()

noise, sr = blendfx.read_audio(args.noise, duration=args.seconds)
blend = Blend(prompt=args.prompt, output="mix", seed=0)
mix = blend(noise, sr)

# the noise is kept as it is: only turn the sum down if it would clip
peak = float(abs(mix).max())
if peak > 0.99:
    mix = mix * (0.99 / peak)
blendfx.write_audio(Path(args.output), mix, sr)
# the adapted music alone, as 32-bit float (it is a stem, not a master)
blendfx.write_audio(Path(args.output).with_name("music.wav"), blend.last_music, sr, bit_depth=32)

report = blend.last_report
print(f"{args.output}: unmasked fraction {report['unmasked_fraction']:.3f}, "
      f"loudness cost {report['loudness_cost_lu']:+.1f} LU")
