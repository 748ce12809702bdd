"""Blend a noise recording into music written for it (BNMusic), and print the blend report.

    python examples/blend_noise.py NOISE.wav -o out/blended.wav --prompt "jazz trio" \
        [--music out/music.wav]

The Blend effect extracts the noise's energy core, has the procedural Composer write music
aligned to it (no model weights), and amplifies the music just enough to cover the core.
"""

import argparse
import math
from pathlib import Path

import blendfx
import numpy as np
from blendfx.effects import Blend

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("noise", help="the noise recording")
parser.add_argument("-o", "--output", default="out/blended.wav")
parser.add_argument("--prompt", default="lofi hip hop, mellow keys")
parser.add_argument("--seconds", type=float, default=None, help="use only the first N seconds")
parser.add_argument("--music", default=None,
                    help="also write the adapted music alone here (32-bit float WAV)")
args = parser.parse_args()

noise, sr = blendfx.read_audio(args.noise, duration=args.seconds)
blend = Blend(prompt=args.prompt, output="mix", seed=0)
mix = blend(noise, sr)

# the noise is kept as it is: only turn the sum down if it would clip
peak = float(abs(mix).max())
trim = 0.99 / peak if peak > 0.99 else 1.0
blendfx.write_audio(Path(args.output), mix * trim, sr)
if args.music:  # the adapted music alone, as 32-bit float (it is a stem, not a master)
    blendfx.write_audio(Path(args.music), blend.last_music, sr, bit_depth=32)

report = blend.last_report
if report.get("silent_noise"):
    print(f"{args.output}: the noise is digital silence: nothing to blend")
else:
    # What the music adds, as power over the noise's (ungated, both before any trim): never
    # negative. BS.1770's integrated loudness gates out quiet blocks, so for a sparse noise (a
    # clock's ticks) the mix can measure fewer LU than the noise alone: that difference is
    # printed beside it, labelled as such.
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    p_music = float(np.mean(np.square(blend.last_music, dtype=np.float64)))
    added = 10 * math.log10(1 + p_music / p_noise) if p_noise > 0 else float("inf")
    print(f"{args.output}: unmasked fraction {report['unmasked_fraction']:.3f}, "
          f"the music adds {added:+.1f} dB of power "
          f"(BS.1770 gated loudness: {report['mix_lufs'] - report['noise_lufs']:+.1f} LU; "
          f"mix {report['mix_lufs'] + 20 * math.log10(trim):.1f} LUFS)")
