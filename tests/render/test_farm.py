"""render_many on a real local Ray cluster (one per module) and on the local process pool."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from blendfx.errors import SessionError
from blendfx.render import render_many, render_session
from blendfx.render.cli import EXIT_USAGE, main
from blendfx.render.farm import (
    MANIFEST,
    STATE_DIR,
    session_output_name,
    task_resources,
    track_groups,
    wants_gpu,
)
from blendfx.render.renderer import render_tracks
from blendfx.render.session import Session, Track, load_session

from .. import sessionkit
from ..conftest import threads_started

CHAIN = {"type": "Chain", "plugins": [
    {"type": "pedalboard.Reverb", "room_size": 0.8},
    {"type": "pedalboard.Compressor", "threshold_db": -20.0},
    {"type": "pedalboard.Chorus"},
    {"type": "pedalboard.Reverb", "room_size": 0.5}]}


def slow_session(folder: Path, name: str, tracks: int = 6, seconds: float = 20.0) -> Path:
    """A session of ``tracks`` independent stereo tracks with reverbs: a few seconds of work
    on one track thread, long enough to be killed in the middle."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"session": {"name": name, "sample_rate": 44100, "tempo": 120}, "tracks": []}
    for i in range(tracks):
        audio = sessionkit.tone(110.0 * (i + 1), seconds, channels=2, seed=i)
        sessionkit.write_stem(folder, f"t{i}.wav", audio)
        manifest["tracks"].append({"name": f"t{i}", "file": f"t{i}.wav", "chain": CHAIN})
    return sessionkit.write_session(folder, manifest)


def _report(path: Path) -> dict:
    """report.json without what differs between two renders of the same session (timings,
    and whether a track came from the cache)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    report.pop("timings")
    for track in report["tracks"]:
        track.pop("render_s")
        track.pop("cached")
    return report


def assert_same_outputs(got: Path, want: Path) -> None:
    files = sessionkit.output_files(got)
    assert files == sessionkit.output_files(want)
    assert {"mix.wav", "report.json", "report.png"} <= set(files)
    for rel in files:
        if rel == "report.json":
            assert _report(got / rel) == _report(want / rel)
        else:
            assert (got / rel).read_bytes() == (want / rel).read_bytes(), rel


@pytest.fixture(scope="module")
def cluster() -> str:
    """One local Ray cluster for the module (about 5 s to start); its GCS address."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Three short sessions and each one's one-by-one render_session output."""
    base = tmp_path_factory.mktemp("sessions")
    paths = {f"s{i}": sessionkit.basic_session(base / f"s{i}", seconds=1.0 + i) for i in range(3)}
    paths["slow"] = slow_session(base / "slow", "slow")
    out = {}
    for name, path in paths.items():
        ref = base / "ref" / name
        render_session(path, ref, progress=False)
        out[name] = (path, ref)
    return out


def test_ray_farm_matches_render_session(cluster: str, sessions: dict, tmp_path: Path) -> None:
    names = ["s0", "s1", "s2"]
    result = render_many([sessions[n][0] for n in names], tmp_path, backend="ray",
                         progress=False)
    assert result.ok and [s.name for s in result.sessions] == names
    for name in names:
        assert_same_outputs(tmp_path / name, sessions[name][1])
        outcome = result.session(name)
        assert outcome.status == "rendered" and outcome.attempts == 1
        assert outcome.pid != os.getpid()  # rendered in a Ray worker, not here
        assert sorted(outcome.tracks_rendered) == ["music", "noise"]
        assert (tmp_path / outcome.outputs["mix"]).is_file()
    # every worker compiles librosa's kernels into a numba cache folder of its own
    caches = {}
    for name in names:
        record = json.loads((tmp_path / STATE_DIR / f"{name}.json").read_text())
        assert record["numba_cache"] is not None
        caches.setdefault(record["pid"], set()).add(record["numba_cache"])
    assert all(len(c) == 1 for c in caches.values())
    assert len(set.union(*caches.values())) == len(caches)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["summary"] == {"sessions": 3, "rendered": 3, "up-to-date": 0, "failed": 0}
    assert manifest["sessions"][0]["timings"]["task_s"] > 0

    again = render_many([sessions[n][0] for n in names], tmp_path, backend="ray",
                        progress=False)
    assert [s.status for s in again.sessions] == ["up-to-date"] * 3
    # a changed stem: that session only renders again, and only the changed track
    sessionkit.write_stem(sessions["s1"][0].parent, "noise.wav", sessionkit.tone(330, 2.0, seed=9))
    third = render_many([sessions[n][0] for n in names], tmp_path, backend="ray",
                        progress=False)
    s1 = third.session("s1")
    assert [s.status for s in third.sessions] == ["up-to-date", "rendered", "up-to-date"]
    assert s1.tracks_rendered == ["noise", "music"]  # the music is keyed by the noise
    sessionkit.write_stem(sessions["s1"][0].parent, "noise.wav", sessionkit.tone(220, 2.0, seed=1))


def test_long_session_splits_into_track_tasks(cluster: str, sessions: dict,
                                             tmp_path: Path) -> None:
    path, ref = sessions["slow"]  # 20 s, six independent tracks
    result = render_many([path], tmp_path, backend="ray", split_seconds=10.0, progress=False)
    assert result.ok, result.failed
    slow = result.session("slow")
    names = [f"t{i}" for i in range(6)]
    assert sorted(n for p in slow.parts for n in p["tracks"]) == names
    assert all(p["pid"] != os.getpid() and p["error"] is None for p in slow.parts)
    assert sorted(slow.tracks_rendered) == names and slow.tracks_cached == []
    report = json.loads((tmp_path / "slow" / "report.json").read_text())
    assert all(t["cached"] for t in report["tracks"])  # the session's own task only mixed
    assert_same_outputs(tmp_path / "slow", ref)
    assert not any((tmp_path / STATE_DIR / "parts").iterdir())  # scratch folders removed
    # not long enough for the default threshold (600 s): one task
    again = render_many([path], tmp_path / "whole", backend="ray", progress=False)
    assert again.session("slow").parts == []


def _kill_mid_render(out: Path, name: str, farm: threading.Thread) -> int:
    """Wait until the session's worker has finished one track (and not the session), then
    SIGKILL that worker process; return its pid."""
    state, tracks = out / STATE_DIR / f"{name}.json", out / name / ".blendfx-cache" / "tracks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and farm.is_alive():
        try:
            record = json.loads(state.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("status") == "running" and tracks.is_dir() and any(tracks.iterdir()):
            os.kill(record["pid"], signal.SIGKILL)
            return record["pid"]
        time.sleep(0.01)
    raise AssertionError("the session was never seen half rendered")


@pytest.mark.parametrize("backend", ["ray", "local"])
def test_killed_worker_is_retried(backend: str, cluster: str, sessions: dict,
                                  tmp_path: Path) -> None:
    names = ["slow", "s0"]
    box: dict = {}
    farm = threading.Thread(target=lambda: box.update(result=render_many(
        [sessions[n][0] for n in names], tmp_path, backend=backend, jobs=2, progress=False)))
    farm.start()
    pid = _kill_mid_render(tmp_path, "slow", farm)
    farm.join(timeout=300)
    assert pid != os.getpid()
    result = box["result"]
    assert result.ok, [s.error for s in result.failed]
    slow = result.session("slow")
    assert slow.attempts == 2 and slow.pid != pid
    assert slow.tracks_cached  # the killed attempt's finished tracks were reused
    for name in names:
        assert_same_outputs(tmp_path / name, sessions[name][1])


def test_broken_sessions_fail_alone(cluster: str, sessions: dict, tmp_path: Path) -> None:
    base = tmp_path / "in"
    unreadable = sessionkit.write_session(base / "garbled", {"session": {"sample_rate": 44100}})
    unreadable.write_text("[session\nsample_rate = ", encoding="utf-8")  # not TOML
    corrupt = sessionkit.write_session(base / "corrupt", {
        "session": {"sample_rate": 44100},
        "tracks": [{"name": "x", "file": "x.wav"}]})
    (base / "corrupt" / "x.wav").write_bytes(b"RIFF but not a wave file")  # fails in the worker
    good = [sessions["s0"][0], sessions["s2"][0]]
    result = render_many([good[0], unreadable, corrupt, good[1]], tmp_path / "out",
                         backend="ray", progress=False)
    assert not result.ok
    assert [s.status for s in result.sessions] == ["rendered", "failed", "failed", "rendered"]
    assert [s.name for s in result.failed] == ["garbled", "corrupt"]
    garbled, bad = result.failed
    assert garbled.attempts == 0 and "session.toml" in garbled.error["message"]
    assert bad.attempts == 1 and "x.wav" in bad.error["message"]
    assert bad.error["type"] == "AudioFileError" and "traceback" not in bad.error
    assert not (tmp_path / "out" / "corrupt").exists()  # a failed check writes nothing
    for name in ("s0", "s2"):
        assert_same_outputs(tmp_path / "out" / name, sessions[name][1])
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["summary"]["failed"] == 2
    assert manifest["sessions"][2]["error"]["message"] == bad.error["message"]


def test_interrupted_farm_rerun_renders_only_what_is_missing(cluster: str, sessions: dict,
                                                             tmp_path: Path) -> None:
    names = ["s0", "slow", "s1"]
    paths = [str(sessions[n][0]) for n in names]
    driver = subprocess.Popen([sys.executable, "-m", "blendfx.render.cli", "render-many", *paths,
                               "-o", str(tmp_path), "--backend", "ray", "--address", cluster,
                               "--jobs", "1"], stderr=subprocess.PIPE, text=True)
    try:
        # one session at a time: s0 finishes, then slow is killed half way with its driver
        state, tracks = tmp_path / STATE_DIR / "slow.json", tmp_path / "slow" / ".blendfx-cache"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if state.is_file() and (tracks / "tracks").is_dir() and any(
                    (tracks / "tracks").iterdir()):
                break
            time.sleep(0.01)
        driver.kill()
        _, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert "[1/3] s0: rendered" in err and "slow" not in err.split("[1/3]")[1]
    assert not (tmp_path / "s1").exists()  # one session at a time: s1 was never started
    # the killed driver's worker ends a moment later (Ray ends a dead job's workers): wait
    # for it, then see what the interrupted session had finished
    pid = json.loads(state.read_text())["pid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)
    finished = {p.name for p in (tracks / "tracks").iterdir()}
    slow_done = (tmp_path / "slow" / "report.json").exists()

    result = render_many(paths, tmp_path, backend="ray", progress=False)
    assert result.ok
    s0, slow, s1 = result.sessions
    assert s0.status == "up-to-date" and s0.attempts == 0
    assert s1.status == "rendered" and sorted(s1.tracks_rendered) == ["music", "noise"]
    if not slow_done:  # (the usual case: it was killed before its mix)
        report = json.loads((tmp_path / "slow" / "report.json").read_text())
        keys = {t["name"]: t["cache_key"] for t in report["tracks"]}
        assert slow.status == "rendered" and slow.tracks_cached
        assert sorted(slow.tracks_cached) == sorted(n for n, k in keys.items() if k in finished)
        assert sorted(slow.tracks_rendered) == sorted(n for n, k in keys.items()
                                                      if k not in finished)
    for name in names:
        assert_same_outputs(tmp_path / name, sessions[name][1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:  # a zombie is not alive
            return fh.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_cli_render_many(cluster: str, sessions: dict, tmp_path: Path, capsys) -> None:
    bad = sessionkit.write_session(tmp_path / "in" / "bad", {
        "session": {"sample_rate": 44100}, "tracks": [{"name": "x", "file": "missing.wav"}]})
    code = main(["render-many", str(sessions["s0"][0]), str(bad), "-o", str(tmp_path / "out"),
                 "--backend", "ray"])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE  # a session with bad input: exit 2, after the others finished
    assert "1 rendered, 0 up to date, 1 failed" in out
    assert err.splitlines()[-1].startswith("blendfx: error: session bad (") \
        and "missing.wav" in err.splitlines()[-1]
    assert_same_outputs(tmp_path / "out" / "s0", sessions["s0"][1])
    code = main(["render-many", str(sessions["s0"][0]), "-o", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    assert code == 0 and out == "" and err == ""


def test_output_names_and_resources(tmp_path: Path) -> None:
    a = sessionkit.basic_session(tmp_path / "rain-01")
    b = sessionkit.basic_session(tmp_path / "rain-02", name="rain night")
    assert session_output_name(a) == "rain-01"  # session.toml without a name: its folder
    assert session_output_name(b, load_session(b)) == "rain_night"
    with pytest.raises(Exception, match="both render into"):
        render_many([a, sessionkit.basic_session(tmp_path / "x" / "rain-01")], tmp_path / "o",
                    progress=False)
    assert not (tmp_path / "o").exists()
    chain = {"type": "Chain", "plugins": [
        {"type": "Blend", "generator": {"type": "MaskedImg2Img", "prompt": "jazz"}}]}
    diffusion = Session(folder=tmp_path, tracks=[Track(name="noise"),
                                                 Track(name="music", key="noise", chain=chain)])
    assert wants_gpu(diffusion) and not wants_gpu(load_session(a))
    assert wants_gpu(diffusion, ["music"]) and not wants_gpu(diffusion, ["noise"])
    assert track_groups(load_session(a)) == [["noise", "music"]]  # music is keyed by noise
    assert track_groups(diffusion) == [["noise", "music"]]
    assert task_resources(True, threads=2, device=None, cluster_gpus=4) == {
        "num_cpus": 2.0, "num_gpus": 1.0}
    assert task_resources(True, threads=1, device="cpu", cluster_gpus=4)["num_gpus"] == 0.0
    assert task_resources(False, threads=1, device=None, cluster_gpus=4)["num_gpus"] == 0.0
    assert task_resources(True, threads=1, device=None, cluster_gpus=0)["num_gpus"] == 0.0
    assert task_resources(True, threads=1, device="cuda", cluster_gpus=1,
                          gpus_per_session=0.25)["num_gpus"] == 0.25


def test_render_tracks_fills_the_cache_only(sessions: dict, tmp_path: Path) -> None:
    path, ref = sessions["s0"]
    results = render_tracks(path, tmp_path, ["music"])  # music is keyed by noise: both
    assert [r.name for r in results] == ["noise", "music"] and not any(r.cached for r in results)
    assert sessionkit.output_files(tmp_path) == []  # no mix, stems or report
    report = json.loads((ref / "report.json").read_text())
    assert {r.key for r in results} == {t["cache_key"] for t in report["tracks"]}  # same keys
    assert all((tmp_path / ".blendfx-cache" / "tracks" / r.key / "audio.wav").is_file()
               for r in results)
    with pytest.raises(SessionError, match="'nope' is not an audible track"):
        render_tracks(path, tmp_path, ["nope"])


def test_one_core_render_is_one_thread_of_work(tmp_path: Path) -> None:
    """``jobs=1`` (a farm's unit of work) starts none of the render's helper threads (decoding
    ahead, measuring, mastering, the effect pipeline, the figure), and writes what a render on
    every core writes."""
    path = slow_session(tmp_path / "s", "one-core", tracks=2, seconds=12.0)
    want = tmp_path / "all"
    render_session(path, want, progress=False, cache=False)
    got = tmp_path / "one"
    with threads_started() as started:
        render_session(path, got, progress=False, cache=False, jobs=1)
    # the one thread of work: the track pool's (the caller waits for it)
    assert [n for n in started if n.startswith("blendfx")] == ["blendfx-track_0"], started
    assert_same_outputs(got, want)
