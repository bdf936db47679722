"""Writers killed with SIGKILL: committed sessions intact, no partial session listed, catalog consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import xrdata
from xrdata.testing import assert_recording_equal, example_recording

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

BATCH_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import xrdata
    from xrdata.testing import example_recording

    store = xrdata.open_store(sys.argv[1])
    n = int(sys.argv[2])
    print("ready", flush=True)
    for i in range(n):
        user, sid = f"u{i % 3}", f"s{i:03d}"
        if sid in store.sessions(user):
            continue
        store.write(example_recording(user, sid, seconds=2.0, rng=np.random.default_rng(i)))
        print("wrote", sid, flush=True)
    print("done", flush=True)
    """
)

LIVE_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import xrdata

    store = xrdata.open_store(sys.argv[1])
    ch = ["Cz", "Pz", "Oz"]
    with store.writer("u1", "live", flush_interval_s=0.05) as w:
        w.add_stream(xrdata.Stream("eeg", "eeg", np.empty(0, np.int64), np.empty((0, 3), np.float32), ch, "V", 1000.0))
        print("ready", flush=True)
        for k in range(10**9):
            t = np.arange(k * 100, (k + 1) * 100, dtype=np.int64) * 1_000_000
            w.append("eeg", t, (t[:, None] % 977 * np.array([1e-6, 2e-6, 3e-6])).astype(np.float32))
            if k % 5 == 4:
                w.flush()
                print("flushed", (k + 1) * 100, flush=True)
    """
)


def _spawn(script: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def _catalog_matches_store(store: xrdata.Store) -> None:
    cat = store.catalog().collect()
    got = sorted(zip(cat["user"], cat["session"], cat["stream"], cat["n_samples"], cat["complete"], strict=True))
    want = []
    for user in store.users():
        for sid in store.sessions(user, include_incomplete=True):
            rec = store.read(user, sid)
            want += [(user, sid, s.name, s.n_samples, store.is_complete(user, sid)) for s in rec.streams.values()]
    assert got == sorted(want)


def test_sigkill_during_batch_writes(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(BATCH_WRITER)
    url = str(tmp_path / "store")
    n_sessions = 24
    rng = np.random.default_rng(7)
    kills = 0
    while True:
        proc = _spawn(script, url, str(n_sessions))
        assert proc.stdout is not None
        # Killed at a random point of the write after a random number of sessions (whatever a write costs).
        lines = [proc.stdout.readline().strip() for _ in range(int(rng.integers(0, 4)))]
        if "done" in lines or "" in lines:
            proc.communicate()
            break
        time.sleep(rng.uniform(0.0, 0.04))
        if proc.poll() is not None:
            proc.communicate()
            break
        _kill(proc)
        kills += 1
        store = xrdata.open_store(url, mode="r")
        for user in store.users():  # after every kill: no partial session is listed
            assert store.sessions(user, include_incomplete=True) == store.sessions(user)
        _catalog_matches_store(store)
    assert proc.returncode == 0 and kills >= 3
    store = xrdata.open_store(url, mode="r")
    listed = {(u, s) for u in store.users() for s in store.sessions(u)}
    assert listed == {(f"u{i % 3}", f"s{i:03d}") for i in range(n_sessions)}
    on_disk = {(p.parent.name, p.name) for p in Path(url).glob("users/*/*") if p.is_dir()}
    assert on_disk == listed  # what the killed writers left half-written, the next writer removed
    for i in range(n_sessions):
        want = example_recording(f"u{i % 3}", f"s{i:03d}", seconds=2.0, rng=np.random.default_rng(i))
        assert_recording_equal(want, store.read(want.user_id, want.session_id))
    _catalog_matches_store(store)


def test_sigkill_during_live_recording(tmp_path: Path) -> None:
    script = tmp_path / "live.py"
    script.write_text(LIVE_WRITER)
    url = str(tmp_path / "store")
    proc = _spawn(script, url)
    assert proc.stdout is not None
    flushed = 0
    while flushed < 3000:
        flushed = int(proc.stdout.readline().split()[1])
    _kill(proc)
    store = xrdata.open_store(url)
    assert store.sessions("u1") == [] and store.sessions("u1", include_incomplete=True) == ["live"]
    eeg = store.read("u1", "live").streams["eeg"]
    assert eeg.n_samples >= flushed and eeg.n_samples % 100 == 0
    t = np.arange(eeg.n_samples, dtype=np.int64) * 1_000_000
    np.testing.assert_array_equal(eeg.time_ns, t)
    np.testing.assert_array_equal(eeg.data, (t[:, None] % 977 * np.array([1e-6, 2e-6, 3e-6])).astype(np.float32))
    cat = store.catalog().collect()
    assert cat["complete"].to_list() == [False] and cat["n_samples"].to_list() == [eeg.n_samples]
    store.write(example_recording("u1", "next", seconds=1.0, rng=np.random.default_rng(0)))  # lock was freed
    assert store.sessions("u1") == ["next"]


def test_readers_see_consistent_data_while_a_writer_runs(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(BATCH_WRITER)
    url = str(tmp_path / "store")
    proc = _spawn(script, url, "12")
    checked: set[tuple[str, str]] = set()
    while proc.poll() is None or len(checked) < 12:
        store = xrdata.open_store(url, mode="r")
        in_catalog = set(zip(*store.catalog().select("user", "session").collect().to_dict().values(), strict=True))
        listed = {(u, s) for u in store.users() for s in store.sessions(u, include_incomplete=True)}
        assert in_catalog <= listed  # the catalog never shows a session the store does not list
        for user, sid in sorted(listed - checked):
            i = int(sid[1:])
            want = example_recording(user, sid, seconds=2.0, rng=np.random.default_rng(i))
            assert_recording_equal(want, store.read(user, sid))
            checked.add((user, sid))
    proc.communicate()
    assert proc.returncode == 0


# ---- durable stores: what a commit declares is fsync'd before it (a power loss, not only a crash, keeps it)

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fsync'd files through /proc")


def _watch_disk(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """("fsync", path) and ("replace", destination) in call order (fsyncs come from several threads)."""
    log: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        log.append(("replace", os.fspath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def _tree(top: Path) -> set[str]:
    return {str(top), *(str(p) for p in top.rglob("*"))}


def _synced_before(log: list[tuple[str, str]], replaced: str) -> set[str]:
    last = max(i for i, (kind, path) in enumerate(log) if kind == "replace" and path == replaced)
    return {path for kind, path in log[:last] if kind == "fsync"}


@needs_proc
def test_durable_write_syncs_every_file_before_the_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    store = xrdata.open_store(root, durable=True)
    rec = example_recording("u1", "s1", seconds=2.0, rng=np.random.default_rng(0))
    log = _watch_disk(monkeypatch)
    store.write(rec)
    session = root.resolve() / "users" / "u1" / "s1"
    commit = str(session / "zarr.json")
    synced = _synced_before(log, commit)
    assert _tree(session) - synced == set()  # every array chunk, document and folder of the session
    assert {str(session.parent), str(session.parent.parent), str(root.resolve())} <= synced  # their entries
    after = {path for kind, path in log[log.index(("replace", commit)):] if kind == "fsync"}
    assert str(session) in after  # the commit's own directory entry
    monkeypatch.undo()
    assert_recording_equal(xrdata.open_store(root, "r").read("u1", "s1"), rec)


@needs_proc
def test_without_durable_only_documents_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    store = xrdata.open_store(root)
    log = _watch_disk(monkeypatch)
    store.write(example_recording("u1", "s1", seconds=2.0, rng=np.random.default_rng(0)))
    session = str(root.resolve() / "users" / "u1" / "s1")
    assert [path for kind, path in log if kind == "fsync" and path.startswith(session)] == []
    assert any(kind == "fsync" for kind, _ in log)  # the staged documents


@needs_proc
def test_durable_live_flush_syncs_its_samples_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    store = xrdata.open_store(root, durable=True)
    ch = ["Cz", "Pz", "Oz"]
    with store.writer("u1", "live", flush_interval_s=3600) as w:
        w.add_stream(xrdata.Stream("eeg", "eeg", np.empty(0, np.int64), np.empty((0, 3), np.float32), ch, "V", 1000.0))
        t = np.arange(500, dtype=np.int64) * 1_000_000
        w.append("eeg", t, np.ones((500, 3), np.float32) * 1e-6)
        log = _watch_disk(monkeypatch)
        w.flush()
        session = root.resolve() / "users" / "u1" / "live"
        chunks = {str(p) for p in (session / "streams" / "eeg").rglob("c/*") if p.is_file()}
        assert chunks and chunks <= _synced_before(log, str(session / "zarr.json"))
    monkeypatch.undo()
    assert xrdata.open_store(root, "r").read("u1", "live").streams["eeg"].data.shape == (500, 3)


@needs_proc
def test_cli_ingest_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = pytest.importorskip("soundfile")
    from xrdata.cli import main

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((16000, 2), np.float32), 16000, subtype="PCM_16")
    root = tmp_path / "store"
    log = _watch_disk(monkeypatch)
    assert main(["ingest", str(wav), "--store", str(root), "--user", "u1", "--session", "s1", "--durable"]) == 0
    session = root.resolve() / "users" / "u1" / "s1"
    assert _tree(session) - _synced_before(log, str(session / "zarr.json")) == set()
