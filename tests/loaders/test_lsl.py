"""Live LSL capture (xrdata.loaders.lsl.record) with real pylsl outlets on this machine only.

LSL discovery is restricted to the host by an lsl_api.cfg (``LSLAPICFG``): IPv6 off, multicast resolve scope
``machine``, known peer 127.0.0.1, so nothing leaves the machine. The config is written and the variable set
when this module is imported, before anything in this process uses liblsl (liblsl reads its config once,
on first use); the subprocess tests inherit it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xrdata
from xrdata.errors import ValidationError, XRDataError
from xrdata.loaders.lsl import parse_selector, record
from xrdata.validation import check_writable

_CFG_DIR = tempfile.mkdtemp(prefix="xrdata-lsl-")
atexit.register(shutil.rmtree, _CFG_DIR, ignore_errors=True)
_CFG = Path(_CFG_DIR) / "lsl_api.cfg"
_CFG.write_text(
    "[ports]\nIPv6 = disable\n\n[multicast]\nResolveScope = machine\nKnownPeers = {127.0.0.1}\n\n[log]\nlevel = -3\n"
)
os.environ["LSLAPICFG"] = str(_CFG)

pylsl = pytest.importorskip("pylsl")
ROOT = Path(__file__).resolve().parents[2]


# Source ids are unique per test run: LSL discovery sees every outlet on the host, including those of
# another test process running at the same time.
RUN = uuid.uuid4().hex[:8]


def _sid(source_id: str) -> str:
    return f"{source_id}-{RUN}"


def _eeg_outlet(source_id: str = "xr-eeg-test", name: str = "XR EEG") -> Any:
    info = pylsl.StreamInfo(name, "EEG", 4, 100.0, "float32", _sid(source_id))
    chans = info.desc().append_child("channels")
    for label in ("Fz", "Cz", "Pz", "Oz"):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "microvolts")
    return pylsl.StreamOutlet(info)


def _in_thread(target: Callable[[threading.Event], None]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    th = threading.Thread(target=target, args=(stop,), daemon=True)
    th.start()
    return stop, th


@pytest.fixture
def store_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "store"


def test_parse_selector() -> None:
    assert parse_selector("type=EEG") == "type='EEG'"
    assert parse_selector(" name = My Stream ") == "name='My Stream'"
    assert parse_selector("type=Gaze&hostname=lab1") == "type='Gaze' and hostname='lab1'"
    assert parse_selector("starts-with(name,'Unity.')") == "starts-with(name,'Unity.')"
    assert parse_selector("*") == ""
    for bad in ("", "EEG", "colour=red", "type="):
        with pytest.raises(ValidationError):
            parse_selector(bad)


def test_record_eeg_and_markers(store_dir: Path) -> None:
    def push(stop: threading.Event) -> None:
        eeg = _eeg_outlet()
        markers = pylsl.StreamOutlet(pylsl.StreamInfo("XR Markers", "Markers", 1, 0.0, "string", _sid("xr-mk-test")))
        i, t0 = 0, time.monotonic()
        while not stop.is_set() and time.monotonic() - t0 < 4.0:
            eeg.push_sample(np.array([i, 2 * i, 3 * i, -i], np.float32))
            if i % 20 == 0:
                markers.push_sample([f"m{i // 20}"])
            i += 1
            time.sleep(0.01)

    stop, th = _in_thread(push)
    seen: list[float] = []
    try:
        res = record(
            store_dir,
            "u1",
            session="s1",
            streams=[f"source_id={_sid('xr-eeg-test')}", f"source_id={_sid('xr-mk-test')}"],
            duration_s=1.5,
            flush_interval_s=0.5,
            resolve_timeout_s=5.0,
            progress=lambda t, n: seen.append(t),
        )
    finally:
        stop.set()
        th.join()
    assert res.stopped_by == "duration" and res.samples["XR_EEG"] > 50 and res.n_events >= 3
    assert seen and seen == sorted(seen)
    store = xrdata.open_store(store_dir, mode="r")
    assert store.is_complete("u1", "s1")
    rec = store.read("u1", "s1")
    check_writable(rec)
    s = rec.streams["XR_EEG"]
    assert s.modality == "eeg" and s.channels == ["Fz", "Cz", "Pz", "Oz"] and s.units == ["V"] * 4
    assert s.n_samples == res.samples["XR_EEG"] and s.rate_hz == 100.0
    idx = np.round(s.data[:, 0] * 1e6)
    np.testing.assert_array_equal(np.diff(idx), 1)  # every sample, in order, none lost or duplicated
    np.testing.assert_allclose(s.data[:, 1:], np.stack([2 * idx, 3 * idx, -idx], 1) * 1e-6, rtol=1e-6)
    t = s.time_ns
    assert (np.diff(t) > 0).all() and 5e6 < np.median(np.diff(t)) < 20e6  # ~10 ms apart
    assert s.meta["source_id"] == _sid("xr-eeg-test") and s.meta["source"] == "lsl"
    ev = rec.events
    assert set(ev["label"]) == {"XR Markers"}
    k = [int(v[1:]) for v in ev["value"]]
    assert k == list(range(k[0], k[0] + len(k)))
    # markers were pushed with EEG sample 20 * k: the event time matches that sample's time within 20 ms
    for ki, te in zip(k, ev["time_ns"], strict=True):
        hit = np.flatnonzero(idx == 20 * ki)
        if hit.size:
            assert abs(int(t[hit[0]]) - te) < 20e6
    assert rec.meta["utc_anchor"] and rec.meta["source_format"] == "lsl"
    assert [x["stored_as"] for x in rec.meta["lsl_streams"]] in ([["XR_EEG"], "events"], ["events", ["XR_EEG"]])


def test_stream_disappears_and_comes_back(store_dir: Path) -> None:
    def push(stop: threading.Event) -> None:
        out = _eeg_outlet("xr-eeg-flaky")
        for i in range(60):
            out.push_sample(np.full(4, i, np.float32))
            time.sleep(0.01)
        del out  # the source goes away...
        time.sleep(0.4)
        out = _eeg_outlet("xr-eeg-flaky")  # ...and comes back (a new outlet instance, same source_id)
        i, t0 = 1000, time.monotonic()
        while not stop.is_set() and time.monotonic() - t0 < 3.0:
            out.push_sample(np.full(4, i, np.float32))
            i += 1
            time.sleep(0.01)

    stop, th = _in_thread(push)
    try:
        res = record(
            store_dir,
            "u1",
            session="flaky",
            streams=[f"source_id={_sid('xr-eeg-flaky')}"],
            duration_s=2.6,
            flush_interval_s=0.5,
            resolve_timeout_s=5.0,
        )
    finally:
        stop.set()
        th.join()
    rec = xrdata.open_store(store_dir, mode="r").read("u1", "flaky")
    assert list(rec.streams) == ["XR_EEG"]  # one stream across the reconnection
    s = rec.streams["XR_EEG"]
    v = np.round(s.data[:, 0] * 1e6)
    before, after = v[v < 1000], v[v >= 1000]
    assert before.size > 10 and after.size > 10, (before, after)
    np.testing.assert_array_equal(np.diff(before), 1)
    np.testing.assert_array_equal(np.diff(after), 1)
    assert (np.diff(s.time_ns) >= 0).all()
    assert res.reconnects >= 1 and s.meta["reconnects"] >= 1


def test_stop_event_commits(store_dir: Path) -> None:
    started = threading.Event()

    def push(stop: threading.Event) -> None:
        out = _eeg_outlet("xr-eeg-stop")
        while not stop.is_set():
            out.push_sample(np.ones(4, np.float32))
            time.sleep(0.01)

    stop_push, th = _in_thread(push)
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        res = record(
            store_dir,
            "u1",
            session="stopped",
            streams=[f"source_id={_sid('xr-eeg-stop')}"],
            stop_event=stop,
            resolve_timeout_s=5.0,
            progress=lambda t, n: started.set(),
        )
    finally:
        timer.cancel()
        stop_push.set()
        th.join()
    assert res.stopped_by == "stop_event" and res.duration_s < 5.0
    store = xrdata.open_store(store_dir, mode="r")
    assert store.is_complete("u1", "stopped")
    assert store.read("u1", "stopped").streams["XR_EEG"].n_samples == res.samples["XR_EEG"] > 0


def test_no_matching_stream_writes_nothing(store_dir: Path) -> None:
    with pytest.raises(XRDataError, match="no LSL stream matches 'name=NoSuchStream'"):
        record(store_dir, "u1", session="none", streams=["name=NoSuchStream"], duration_s=1.0, resolve_timeout_s=0.3)
    store = xrdata.open_store(store_dir, mode="r")
    assert store.sessions("u1", include_incomplete=True) == []


def test_bad_mapping_fails_before_writing(store_dir: Path) -> None:
    out = _eeg_outlet("xr-eeg-mapping")
    with pytest.raises(ValidationError, match="unknown key"):
        record(
            store_dir,
            "u1",
            session="bad",
            streams=[f"source_id={_sid('xr-eeg-mapping')}"],
            duration_s=1.0,
            resolve_timeout_s=5.0,
            mapping={"XR EEG": {"modalty": "eeg"}},
        )
    del out
    assert xrdata.open_store(store_dir, mode="r").sessions("u1", include_incomplete=True) == []


_CHILD = """
import sys, threading, time
import numpy as np, pylsl
from xrdata.loaders.lsl import record
info = pylsl.StreamInfo("XR EEG", "EEG", 2, 100.0, "float32", sys.argv[2])
out = pylsl.StreamOutlet(info)
def push():
    i = 0
    while True:
        out.push_sample(np.array([i, i], np.float32)); i += 1; time.sleep(0.01)
threading.Thread(target=push, daemon=True).start()
res = record(sys.argv[1], "u1", session="live", streams=["source_id=" + sys.argv[2]], flush_interval_s=0.2,
             resolve_timeout_s=5)
print("stopped_by", res.stopped_by, flush=True)
"""


def _run_child_until_flushed(store_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store_dir), _sid("xr-eeg-child")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                rec = xrdata.open_store(store_dir, mode="r").read("u1", "live")
                if "XR_EEG" in rec.streams and rec.streams["XR_EEG"].n_samples >= 20:
                    return proc
            except XRDataError:
                pass
            assert proc.poll() is None, "the recorder exited early"
        raise AssertionError("the recorder wrote nothing within 15 s")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise


def test_killed_hard_is_incomplete_but_readable(store_dir: Path) -> None:
    proc = _run_child_until_flushed(store_dir)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    store = xrdata.open_store(store_dir, mode="r")
    assert store.sessions("u1") == [] and store.sessions("u1", include_incomplete=True) == ["live"]
    s = store.read("u1", "live").streams["XR_EEG"]
    assert s.n_samples >= 20 and s.time_ns.shape == (s.n_samples,)
    np.testing.assert_array_equal(np.diff(np.round(s.data[:, 0] * 1e6)), 1)


def test_sigint_commits_cleanly(store_dir: Path) -> None:
    proc = _run_child_until_flushed(store_dir)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped_by interrupt" in out
    store = xrdata.open_store(store_dir, mode="r")
    assert store.is_complete("u1", "live") and store.read("u1", "live").streams["XR_EEG"].n_samples >= 20


def test_record_cli(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xrdata.cli import main

    def push(stop: threading.Event) -> None:
        out = _eeg_outlet("xr-eeg-cli", "XR EEG CLI")
        while not stop.is_set():
            out.push_sample(np.full(4, 2.0, np.float32))
            time.sleep(0.01)

    stop_push, th = _in_thread(push)
    try:
        code = main(
            [
                "record",
                "--store",
                str(store_dir),
                "--user",
                "u1",
                "--session",
                "cli",
                "--streams",
                f"source_id={_sid('xr-eeg-cli')}",
                "--duration",
                "1.0",
                "--durable",
                "--json",
            ]
        )
    finally:
        stop_push.set()
        th.join()
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["session"] == "cli" and out["stopped_by"] == "duration" and out["samples"]["XR_EEG_CLI"] > 0
    eeg = xrdata.open_store(store_dir, mode="r").read("u1", "cli").streams["XR_EEG_CLI"]
    np.testing.assert_allclose(eeg.data, 2e-6)  # microvolts -> volts
