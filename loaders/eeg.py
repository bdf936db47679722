"""EEG files -> Recording, through mne: EDF, BDF, BrainVision (.vhdr + .eeg/.dat + .vmrk), FIF, EEGLAB (.set).

One thin reader per format (:func:`read_edf`, :func:`read_bdf`, :func:`read_brainvision`, :func:`read_fif`,
:func:`read_eeglab`), each a call of ``mne.io.read_raw_<fmt>(..., preload=True)`` followed by the shared
conversion :func:`recording_from_raw`. (During ``xrdata.loaders.ingest`` a file without stim channels is
instead parsed in time blocks while the store writes it, with the same values: see "block streaming" below.)
What the conversion does:

* **Streams by channel type.** mne's EEG channels whose data are volts form the ``eeg`` stream (modality
  ``eeg``). Every other mne channel type (``stim``, ``misc``, ``eog``, ``ecg``, ``emg``, ``resp`` ...) becomes
  its own ``other`` stream named after the type, with the type in ``meta['mne_ch_type']``. EOG/EMG/ECG are
  kept out of the ``eeg`` stream on purpose: that stream feeds the EEG encoder, which expects scalp electrodes,
  and a separate stream per type keeps mne's typing without a per-channel type list. An EEG-typed channel
  whose unit is not a voltage (EDF files type every signal as EEG) goes to an ``eeg_nonvolt`` stream.
  Each stream's ``meta['mne_channel_index']`` gives its channels' positions in the mne Raw (the file's
  channel order; within its rate group for mixed-rate files), so the original order can be rebuilt.
  Use ``channel_types={"HEOG": "eog"}`` to fix types the file gets wrong.
* **Units.** mne returns SI: volts for voltage channels. Other channels keep the unit mne leaves them in:
  BrainVision ``µS`` is scaled to ``S``, ``C`` is ``degC``, unknown units (``ARU``, ``BS``) are unscaled and
  kept as written, stim channels and ``n/a`` are ``"1"``. The file's own unit strings are kept in
  ``meta['orig_units']`` (EDF/BDF/BrainVision). A BrainVision channel without a unit field (``Ch2=FP2,,0.5,``)
  is microvolts, as the BrainVision spec and mne say, so it is an EEG channel in volts.
* **dtype.** float32. EDF is 16-bit and BDF 24-bit: a BDF level is 31.25 nV (BioSemi) and float32 spacing
  stays below that up to |v| = 0.5 V (2**-25 V = 29.8 nV in [0.25, 0.5) V), so every BDF level maps to a
  distinct float32 and the rounding error (at most 15 nV at full scale, < 1 nV at the usual +-15 mV offsets)
  is far below amplifier noise (~0.5 uV). A stream falls back to float64 only where float32 cannot hold its
  values (stim codes above 2**24, magnitudes beyond float32's range).
* **Clock.** The session clock's zero is mne's sample 0 of the acquisition, the time of ``meas_date``:
  sample ``i`` of the file is at ``round((first_samp + i) * 1e9 / sfreq)`` ns (``first_samp`` is 0 for
  EDF/BDF/BrainVision/EEGLAB; FIF files may start later than their ``meas_date``). ``meta['utc_anchor']`` is
  ``meas_date`` (UTC) when the file has one. Annotations are on the same axis (mne keeps their onsets relative
  to ``meas_date``, or to sample 0 when there is none).
* **Events.** Each annotation is an event (``time_ns`` = onset, ``duration_ns``, ``label`` = description,
  ``value`` = the channels it applies to, comma-separated, or ""). Stim channels are also decoded with
  ``mne.find_events`` (every change to a new non-zero code, ``label="stim/<channel>"``, ``value`` = the code);
  switch off with ``stim_events=False`` (and annotations with ``annotations=False``). The stim channels
  themselves stay in their ``stim`` stream.
* **Mixed rates.** EDF/BDF allow a different rate per signal; mne would silently resample the slower signals
  to the fastest rate. These readers read each rate group at its native rate instead (``include=``), as
  separate streams named ``<type>_<rate>hz`` (``eeg_256hz``, ``misc_64hz``...).
* **Warnings** mne emits while reading are kept in ``meta['reader_warnings']`` rather than raised.

Patient identification fields (names, birthdays, hospital ids) are not copied.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, SchemaError, XRDataError, require
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.model import EVENTS_SCHEMA, Recording, Stream
from xrdata.validation import check_writable

__all__ = [
    "STREAMED_FORMATS", "BlockFill", "UnknownChannelsError", "WholeReadNeeded", "read_bdf", "read_brainvision",
    "read_edf", "read_eeglab", "read_fif", "recording_from_raw", "streamed_reads",
]

#: Units mne scales to SI while reading, per format: file unit -> unit of the returned values. Units not
#: listed are returned as stored (mne scales nothing else), so their own unit string stays right.
_SCALED_UNITS: dict[str, dict[str, str]] = {
    # mne.io.edf: "\u03bcV", "\u00b5V", "\x83\xcaV" (Shift-JIS mu) and "uV" -> 1e-6, "mV" -> 1e-3
    "edf": {"V": "V", "mV": "V", "\u00b5V": "V", "\u03bcV": "V", "\x83\xcaV": "V", "uV": "V"},
    # mne.io.brainvision._unit_dict
    "brainvision": {
        "V": "V", "mV": "V", "\u00b5V": "V", "uV": "V", "nV": "V", "\u00b5S": "S", "uS": "S",
        "C": "degC", "\u00b0C": "degC",
    },
}
_SCALED_UNITS["bdf"] = _SCALED_UNITS["edf"]
_NO_UNIT = ("", "n/a", "NA", "N/A")
_FLOAT32_EXACT_INT = 2**24  # integers up to this are exact in float32
_EDF_ANNOTATION_LABELS = (b"EDF Annotations", b"BDF Annotations")


#: True while a caller that validates the whole recording itself reads (``ingest``, ``read_bids``): the
#: readers then skip their own :func:`check_writable` pass, so the samples are checked once, not twice.
_DEFER_CHECK: ContextVar[bool] = ContextVar("xrdata_loaders_defer_check", default=False)


@contextmanager
def deferred_check() -> Iterator[None]:
    """Within this block the EEG readers do not run :func:`check_writable` on what they return: the caller
    promises to validate the recording (or what it merges it into) before it is written."""
    token = _DEFER_CHECK.set(True)
    try:
        yield
    finally:
        _DEFER_CHECK.reset(token)


def check_deferred() -> bool:
    """Whether the caller of a reader validates the recording itself (see :func:`deferred_check`)."""
    return _DEFER_CHECK.get()


# --------------------------------------------------------------------------------------- block streaming
# Inside ``streamed_reads`` (used by ``xrdata.loaders.ingest``) a file is opened with ``preload=False`` and
# its samples are parsed in time blocks by a ``BlockFill`` thread, each block cast to float32 straight into
# the streams' arrays, while the store already compresses and writes the chunks that are complete: the
# parse, the conversion and the compression overlap instead of running one after the other. The values are
# those of ``preload=True``: mne's preload is one ``_read_segment`` call over the whole file and
# ``get_data(start=, stop=)`` is the same call over a block; every reader computes a sample from its own
# bytes only. Stim channels (BioSemi's Status, Neuromag's STI) are parsed the same way; their events are
# decoded once the whole channel is in (``BlockFill.stim_events``: ``mne.find_events`` on a one-channel
# RawArray of the same samples, rate and first sample), and a code float32 cannot hold exactly, or a
# channel mne cannot decode without a warning, sends the file back to the whole read.

#: The formats whose readers parse in blocks inside :func:`streamed_reads` (all of this module's).
STREAMED_FORMATS = frozenset({"edf", "bdf", "brainvision", "fif", "eeglab"})
#: Bytes of float64 samples (all channels) parsed per block: a few MB, so the block stays in cache while
#: it is cast and the first chunks reach the store's encoder early.
_BLOCK_BYTES = 4 << 20


class WholeReadNeeded(Exception):
    """A block holds values float32 cannot (beyond its range, or stim codes it cannot hold exactly): the stream
    is float64, which only the whole recording decides, so the caller reads the file again without streaming.
    Also raised where a stim channel's events cannot be decoded as the whole read decodes them."""


@dataclass
class _Streaming:
    """What :func:`streamed_reads` tells the readers: the file (for error messages) and where fills go."""

    path: str
    fmt: str
    fills: list[BlockFill] = field(default_factory=list)


_STREAMING: ContextVar[_Streaming | None] = ContextVar("xrdata_loaders_streaming", default=None)


@contextmanager
def streamed_reads(path: PathLike, fmt: str, into: list[BlockFill]) -> Iterator[None]:
    """Within this block an EEG reader of ``path`` (format ``fmt``) may return a recording whose sample arrays
    are still being filled by a :class:`BlockFill` thread, appended to ``into``. The caller must wait for each
    fill before it reads those arrays (the store's chunk writer does, chunk by chunk), add each fill's
    :meth:`BlockFill.stim_events` to its recording's events, validate the recording itself (the readers' own
    check is deferred) and :meth:`BlockFill.close` every fill when done."""
    token = _STREAMING.set(_Streaming(str(path), fmt))
    defer = _DEFER_CHECK.set(True)
    try:
        yield
    finally:
        state = _STREAMING.get()
        _DEFER_CHECK.reset(defer)
        _STREAMING.reset(token)
        if state is not None:
            into.extend(state.fills)


class BlockFill:
    """Parses a non-preloaded mne Raw in time blocks, in its own thread, into preallocated float32 arrays.

    ``targets`` are ``(rows, out)``: ``out`` is a (len(rows), T) float32 array that receives
    ``data[rows]`` of each (C, B) float64 block ``data`` (C = channels of the Raw, T = its samples, B =
    block length); the streams hold ``out.T``, (T, len(rows)). :meth:`wait` blocks until the samples asked
    for are final. A failure of the parse is kept and raised by :meth:`wait` as a
    :class:`~xrdata.errors.LoaderError` naming the file (what the reader raises for it when it preloads),
    an overflow of float32 (or a stim code it cannot hold exactly) as :class:`WholeReadNeeded`. With
    ``stim_events``, :meth:`stim_events` decodes the Raw's stim channels once they are parsed.
    """

    def __init__(
        self, raw: Any, targets: Sequence[tuple[Sequence[int], np.ndarray]], path: str, fmt: str, *,
        stim_events: bool = False,
    ) -> None:
        self._raw = raw
        self._targets = [(np.asarray(rows, dtype=np.intp), out) for rows, out in targets]
        types = raw.get_channel_types()
        # (channel index, name, its row of samples) of every stim channel, in the Raw's channel order
        self._stim = [(int(i), raw.ch_names[i], out[k]) for rows, out in self._targets  # (one "stim" target)
                      for k, i in enumerate(rows.tolist()) if types[i] == "stim"]
        self._stim_rows = np.array([i for i, _, _ in self._stim], dtype=np.intp)
        self._decode = stim_events
        self._sfreq, self._first_samp = float(raw.info["sfreq"]), int(raw.first_samp)
        self._n = int(raw.n_times)
        self._path, self._fmt = path, fmt
        self._done = 0  # samples [0, _done) are final in every target
        self._error: BaseException | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="xrdata-eeg-blocks", daemon=True)

    def holds(self, data: np.ndarray) -> bool:
        """Whether ``data`` is a stream's array this fill writes (``out.T`` of one of its targets)."""
        return any(data.base is out for _, out in self._targets)

    def start(self) -> None:
        self._thread.start()

    def wait(self, stop: int | None = None) -> None:
        """Return once samples ``[0, stop)`` (None: all) are final; raise the parse's error if it failed."""
        want = self._n if stop is None else min(int(stop), self._n)
        with self._cond:
            while self._done < want and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Stop parsing (after the current block) and wait for the thread; the arrays are left as they are."""
        with self._cond:
            self._stop = True
        if self._thread.is_alive():
            self._thread.join()

    def stim_events(self) -> list[tuple[int, int, str, str]]:
        """Event rows (time_ns, duration_ns, label, value) of the stim channels, as the whole read decodes them
        (``stim_events``; [] without it); call once :meth:`wait` has returned. A channel mne does not decode, or
        decodes with a warning (which the whole read keeps in the recording's metadata), raises
        :class:`WholeReadNeeded`: the whole read then gives the note or the error the reader gives."""
        if not self._decode or not self._stim:
            return []
        import mne

        rows: list[tuple[int, int, str, str]] = []
        for _, name, values in self._stim:
            notes: list[str] = []
            try:  # whatever goes wrong here, the whole read decides what it means (a note, or the error)
                with _collect_warnings(notes):
                    info = mne.create_info([name], self._sfreq, ["stim"])
                    raw = mne.io.RawArray(values[None].astype(np.float64), info, first_samp=self._first_samp,
                                          verbose="error")
                    rows += _stim_rows(raw, name)
            except Exception as exc:
                raise WholeReadNeeded(f"{self._path}: stim channel {name!r} not decoded: {exc}") from exc
            if notes:
                raise WholeReadNeeded(f"{self._path}: stim channel {name!r}: {notes[0]}")
        return rows

    def _run(self) -> None:
        n, raw = self._n, self._raw
        step = max(1, _BLOCK_BYTES // (8 * max(1, len(raw.ch_names))))
        try:
            for t0 in range(0, n, step):
                if self._stop:
                    raise LoaderError(f"{self._path}: reading stopped at sample {t0} of {n}")  # for any waiter
                t1 = min(n, t0 + step)
                block = raw.get_data(start=t0, stop=t1)  # (C, t1 - t0) float64, as preload computes it
                with np.errstate(over="raise"):
                    for rows, out in self._targets:
                        _cast_rows(block, rows, out[:, t0:t1])
                if self._stim_rows.size:  # the whole read keeps codes float32 cannot hold exactly in float64
                    codes = block[self._stim_rows]
                    codes = codes[np.isfinite(codes)]
                    if codes.size and (float(np.abs(codes).max()) > _FLOAT32_EXACT_INT
                                       or not np.array_equal(codes, np.round(codes))):
                        raise WholeReadNeeded(f"{self._path}: stim codes float32 does not hold exactly")
                with self._cond:
                    self._done = t1
                    self._cond.notify_all()
            raw.close()
        except BaseException as exc:
            with self._cond:
                self._error = self._as_error(exc)
                self._cond.notify_all()

    def _as_error(self, exc: BaseException) -> BaseException:
        """What :meth:`wait` raises for ``exc``: the readers' error contract (``_registry.reader``)."""
        if isinstance(exc, XRDataError | WholeReadNeeded):
            return exc
        error: BaseException
        if isinstance(exc, FloatingPointError):
            error = WholeReadNeeded(f"{self._path}: values beyond float32's range")
        elif isinstance(exc, MemoryError | RecursionError):
            error = LoaderError(f"{self._path}: not a readable {self._fmt} file ({type(exc).__name__})")
        else:
            error = LoaderError(f"{self._path}: cannot read as {self._fmt}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error


def _cast_rows(block: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = block[rows[k]]`` cast to ``out``'s dtype (the cast :func:`_transpose_to` makes)."""
    if rows.size and bool((np.diff(rows) == 1).all()):
        np.copyto(out, block[int(rows[0]) : int(rows[-1]) + 1], casting="same_kind")
    else:
        for k, i in enumerate(rows.tolist()):
            out[k] = block[i]


def _open_raws(open_raws: Callable[[bool], list[Any]], *, stream: bool = True) -> tuple[list[Any], list[str]]:
    """The mne Raw(s) of a file (``open_raws(preload)``) and the warnings mne emitted opening them.

    Preloaded, except inside :func:`streamed_reads` (and with ``stream``) where a file every Raw of which has
    samples stays unloaded. The warnings are then those of the unloaded open: the readers streamed here
    warn about the header, not while reading uniform-rate samples (mne's EDF reader warns when it resamples
    a block of mixed-rate signals: ``_read_edf_like`` streams only files whose rate groups it read apart).
    A Raw opened unloaded that is not streamed is loaded in place (``load_data``: the very read
    ``preload=True`` makes at the end of the open), not opened again.
    """
    notes: list[str] = []
    with _collect_warnings(notes):
        if not (stream and _STREAMING.get() is not None):
            return open_raws(True), notes
        raws = open_raws(False)
        if not all(int(r.n_times) > 0 for r in raws):  # nothing to parse in blocks
            for r in raws:
                r.load_data(verbose="error")
    return raws, notes


class UnknownChannelsError(LoaderError):
    """``channel_types`` names channels the file does not have (``.missing`` lists them)."""

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = list(missing)


# ------------------------------------------------------------------------------------------- conversion


@contextmanager
def _collect_warnings(into: list[str]) -> Iterator[None]:
    """Record the warnings mne emits (kept in the recording's meta) instead of letting them propagate."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message).strip()
        if text and text not in into:
            into.append(text)


def _fiff_unit_names() -> dict[int, str]:
    from mne.io.constants import FIFF

    return {
        int(FIFF.FIFF_UNIT_V): "V",
        int(FIFF.FIFF_UNIT_T): "T",
        int(FIFF.FIFF_UNIT_T_M): "T/m",
        int(FIFF.FIFF_UNIT_AM): "A*m",
        int(FIFF.FIFF_UNIT_CEL): "degC",
        int(FIFF.FIFF_UNIT_M): "m",
        int(FIFF.FIFF_UNIT_MOL): "mol",
        int(FIFF.FIFF_UNIT_NONE): "1",
    }


def _channel_unit(ch: Mapping[str, Any], orig_unit: str | None, fmt: str, fiff_names: Mapping[int, str]) -> str:
    """The unit of the values mne returns for one channel.

    Hand-written because mne's own per-channel unit code is not reliable across readers: the EDF reader
    labels every non-stim signal volts (a thermometer in degC included) and the BrainVision reader labels
    siemens "no unit" after scaling uS to S. So where the file's own unit is known, the format's scaling table
    decides; otherwise (FIF, EEGLAB) mne's unit code does.
    """
    from mne.io.constants import FIFF

    if int(ch["kind"]) == int(FIFF.FIFFV_STIM_CH):
        return "1"
    if orig_unit is not None and fmt in _SCALED_UNITS:
        unit = orig_unit.strip()
        if unit in _SCALED_UNITS[fmt]:
            return _SCALED_UNITS[fmt][unit]
        return "1" if unit in _NO_UNIT else unit
    return fiff_names.get(int(ch["unit"]), "1")


def _samples_by_channel(raw: Any) -> np.ndarray:
    """(C, T) float64 samples of a preloaded Raw, without a copy.

    ``raw._data`` is the preloaded array (private, but the attribute every mne reader fills); ``get_data``
    would first copy the whole recording through fancy indexing, which doubled the conversion time.
    """
    data = getattr(raw, "_data", None)
    if isinstance(data, np.ndarray) and data.shape == (len(raw.ch_names), raw.n_times):
        return data
    return np.asarray(raw.get_data())


def _transpose_to(data: np.ndarray, rows: Sequence[int], dtype: type[np.floating[Any]]) -> np.ndarray:
    """(T, len(rows)) ``dtype`` samples of ``data[rows]`` ((C, T) float64), as a Fortran-ordered array.

    One sequential pass: the rows are cast into a (len(rows), T) array and its transpose is returned (a
    view, no copy). The store's chunk writer makes each 1 MiB chunk time-major while it compresses it, in
    its encoder threads, so no time-major copy of the whole recording is made. (A blocked transpose into a
    C-ordered array cost 0.1-0.25 s per 154 MB of EEG here, a half to a whole mne parse of the file.)

    Raises FloatingPointError when a value overflows ``dtype``.
    """
    idx = np.asarray(rows, dtype=np.intp)
    out = np.empty((idx.size, data.shape[1]), dtype=dtype)
    with np.errstate(over="raise"):
        _cast_rows(data, idx, out)
    return out.T


def _fit_dtype(data: np.ndarray, rows: Sequence[int], *, integer_codes: bool) -> np.ndarray:
    """(T, C) float32 of ``data[rows]`` unless float32 would lose values float64 holds (module docstring)."""
    if integer_codes:
        block = data[np.asarray(rows)]
        finite = block[np.isfinite(block)]
        if finite.size and float(np.abs(finite).max()) > _FLOAT32_EXACT_INT:
            return _transpose_to(data, rows, np.float64)
    try:
        return _transpose_to(data, rows, np.float32)
    except FloatingPointError:  # beyond float32's range
        return _transpose_to(data, rows, np.float64)


def _rate_tag(sfreq: float) -> str:
    """``256hz``, ``0p5hz``: a stream-name suffix for a rate group."""
    text = f"{sfreq:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", "p") + "hz"


def _sample_times(first_samp: int, n: int, sfreq: float) -> np.ndarray:
    """(n,) int64 ns of samples first_samp .. first_samp + n - 1 of a regular acquisition at ``sfreq``."""
    idx = np.arange(first_samp, first_samp + n, dtype=np.float64)
    return np.rint(idx * 1e9 / sfreq).astype(np.int64)


def _streams_from_raw(
    raw: Any, fmt: str, *, rate_suffix: str = "", orig_units: Mapping[str, str] | None = None,
    blocks: list[tuple[list[int], np.ndarray]] | None = None,
) -> list[Stream]:
    """One stream per channel type of ``raw`` (see the module docstring).

    With ``blocks`` (a Raw to parse in blocks, see :class:`BlockFill`), the streams get empty float32 arrays
    and ``(rows, out)`` is appended to ``blocks`` for each: ``out`` (len(rows), T) float32, the stream's data
    being ``out.T``.
    """
    sfreq = float(raw.info["sfreq"])
    if not (math.isfinite(sfreq) and sfreq > 0):
        raise ValueError(f"invalid sampling rate {sfreq!r} Hz")
    fiff_names = _fiff_unit_names()
    orig = orig_units or {}
    types = raw.get_channel_types()
    groups: dict[str, list[int]] = {}
    units: list[str] = []
    for i, (ch, ch_type) in enumerate(zip(raw.info["chs"], types, strict=True)):
        unit = _channel_unit(ch, orig.get(ch["ch_name"]), fmt, fiff_names)
        units.append(unit)
        key = ch_type
        if ch_type == "eeg" and unit != "V":
            key = "eeg_nonvolt"
        groups.setdefault(key, []).append(i)
    time_ns = _sample_times(int(raw.first_samp), int(raw.n_times), sfreq)
    samples = _samples_by_channel(raw) if blocks is None else None
    bads = set(raw.info["bads"])
    streams: list[Stream] = []
    for key, idx in groups.items():
        names = [raw.ch_names[i] for i in idx]
        is_stim = key == "stim"
        meta: dict[str, Any] = {
            "source_format": fmt,
            "mne_ch_type": "eeg" if key == "eeg_nonvolt" else key,
            "mne_channel_index": idx,
            "sfreq_hz": sfreq,
            "first_samp": int(raw.first_samp),
            "highpass_hz": float(raw.info["highpass"]),
            "lowpass_hz": float(raw.info["lowpass"]),
            "bads": [n for n in names if n in bads],
        }
        if orig:
            meta["orig_units"] = [str(orig.get(n, "")) for n in names]
        if key == "eeg_nonvolt":
            meta["note"] = "EEG-typed channels whose unit is not a voltage; kept apart from the eeg stream"
        name = key + rate_suffix
        modality = "eeg" if key == "eeg" else "other"
        if samples is not None:
            data = _fit_dtype(samples, idx, integer_codes=is_stim)
        else:
            assert blocks is not None
            out = np.empty((len(idx), int(raw.n_times)), dtype=np.float32)
            blocks.append((idx, out))
            data = out.T
        streams.append(
            Stream(name, modality, time_ns, data, names, [units[i] for i in idx], rate_hz=sfreq, meta=meta)
        )
    return streams


def _events_from_raw(raw: Any, *, annotations: bool, stim_events: bool, notes: list[str]) -> list[tuple]:
    """Event rows (time_ns, duration_ns, label, value) from annotations and decoded stim channels."""
    rows: list[tuple[int, int, str, str]] = []
    if annotations:
        ann = raw.annotations
        ch_lists = ann.ch_names if hasattr(ann, "ch_names") else [()] * len(ann)
        for onset, duration, desc, chans in zip(ann.onset, ann.duration, ann.description, ch_lists, strict=True):
            if not (math.isfinite(onset) and math.isfinite(duration)):
                notes.append(f"annotation {desc!r} with a non-finite onset/duration dropped")
                continue
            label = str(desc) if str(desc) else "annotation"
            rows.append(
                (round(onset * 1e9), max(0, round(duration * 1e9)), label, ",".join(map(str, chans)))
            )
    if stim_events:
        for name, ch_type in zip(raw.ch_names, raw.get_channel_types(), strict=True):
            if ch_type != "stim":
                continue
            try:
                rows += _stim_rows(raw, name)
            except ValueError as exc:  # e.g. non-integer codes: not a trigger channel after all
                notes.append(f"stim channel {name!r} not decoded: {exc}")
    return rows


def _stim_rows(raw: Any, name: str) -> list[tuple[int, int, str, str]]:
    """Event rows of stim channel ``name`` of ``raw``: every change to a new non-zero code (``mne.find_events``)."""
    import mne

    sfreq = float(raw.info["sfreq"])
    found = mne.find_events(raw, stim_channel=name, shortest_event=1, consecutive=True, initial_event=True,
                            verbose="error")
    return [(round(int(sample) * 1e9 / sfreq), 0, f"stim/{name}", str(int(code))) for sample, _, code in found]


def recording_from_raw(
    raws: Any | Sequence[Any],
    *,
    fmt: str,
    user_id: str,
    session_id: str,
    source_files: Sequence[str],
    annotations: bool = True,
    stim_events: bool = True,
    channel_types: Mapping[str, str] | None = None,
    orig_units: Mapping[str, str] | None = None,
    reader_warnings: Sequence[str] = (),
) -> Recording:
    """Convert mne Raw object(s) of one file to a :class:`Recording` (the conversion every reader shares).

    Args:
        raws: one ``mne.io.BaseRaw``, or several read from one file at different rates (one per rate group;
            their stream names get a ``_<rate>hz`` suffix and the events come from the first).
        fmt: format name recorded in the metadata ("edf", "bdf", "brainvision", "fif", "eeglab" ...).
        user_id, session_id: ids of the recording.
        source_files: file names (not paths) the data came from.
        annotations: turn ``raw.annotations`` into events.
        stim_events: decode stim channels into events with ``mne.find_events`` (for a Raw parsed in blocks
            inside :func:`streamed_reads`, the caller adds them once parsed: :meth:`BlockFill.stim_events`).
        channel_types: mne channel types to set first, e.g. ``{"HEOG": "eog"}`` (names not in the file are
            an error).
        orig_units: channel name -> unit string as written in the file (EDF/BDF/BrainVision headers): with
            ``fmt``'s scaling table it gives each channel's unit; without it mne's unit codes do.
        reader_warnings: warnings collected while reading, kept in ``meta['reader_warnings']``.

    Returns a recording whose streams are described in the module docstring: ``(T, C)`` float32 volts for
    ``eeg``, timestamps in int64 ns with zero at ``meas_date``.
    """
    raw_list: list[Any] = list(raws) if isinstance(raws, list | tuple) else [raws]
    notes = list(reader_warnings)
    unknown = [k for k in channel_types or {} if all(k not in r.ch_names for r in raw_list)]
    if unknown:
        raise UnknownChannelsError(
            f"{source_files[0]}: channel_types names channels the file does not have: {unknown}; "
            f"it has {[c for r in raw_list for c in r.ch_names]}",
            unknown,
        )
    streaming = _STREAMING.get()
    streams: list[Stream] = []
    pending: list[tuple[Any, list[tuple[list[int], np.ndarray]]]] = []  # raws to parse in blocks
    for raw in raw_list:
        if channel_types:
            wanted = {k: v for k, v in channel_types.items() if k in raw.ch_names}
            if wanted:
                with _collect_warnings(notes):
                    raw.set_channel_types(wanted, verbose="error")
        suffix = "_" + _rate_tag(float(raw.info["sfreq"])) if len(raw_list) > 1 else ""
        blocks: list[tuple[list[int], np.ndarray]] | None = None
        if streaming is not None and not raw.preload:
            blocks = []
            pending.append((raw, blocks))
        streams.extend(_streams_from_raw(raw, fmt, rate_suffix=suffix, orig_units=orig_units, blocks=blocks))
    first = raw_list[0]
    with _collect_warnings(notes):  # (the stim channels of a Raw parsed in blocks: BlockFill.stim_events)
        rows = _events_from_raw(first, annotations=annotations, stim_events=stim_events and first.preload,
                                notes=notes)
    events = pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row") if rows else None
    meta: dict[str, Any] = {"source_files": list(source_files), "source_format": fmt}
    import mne

    meta["reader"] = f"mne {mne.__version__}"
    meas_date = first.info["meas_date"]
    if meas_date is not None:
        meta["utc_anchor"] = meas_date.isoformat()
    device = first.info.get("device_info")
    if device:
        meta["device"] = {str(k): str(v) for k, v in device.items() if v is not None}
    if first.info.get("line_freq"):
        meta["line_freq_hz"] = float(first.info["line_freq"])
    if len(raw_list) > 1:
        meta["rate_groups_hz"] = [float(r.info["sfreq"]) for r in raw_list]
    if notes:
        meta["reader_warnings"] = notes
    rec = Recording(user_id, session_id, streams, events=events, meta=meta)
    if streaming is not None:
        for raw, blocks in pending:  # started last: nothing above reads the Raw while its thread does
            fill = BlockFill(raw, blocks, streaming.path, streaming.fmt, stim_events=stim_events and raw is first)
            streaming.fills.append(fill)
            fill.start()
    if check_deferred():
        return rec
    try:
        check_writable(rec)
    except SchemaError as exc:  # e.g. an annotation named like a task label ('task/x') without a class
        raise LoaderError(f"{source_files[0]}: {exc}") from exc
    return rec


# -------------------------------------------------------------------------------------------- readers


def _mne() -> Any:
    return require("mne", "loaders")


def _edf_header(path: Path) -> tuple[list[str], list[str], list[int]] | None:
    """(labels, units, samples per record) of the data signals of an EDF/BDF file, annotation signals left
    out; None when the header cannot be parsed (mne then reports the problem).

    Hand-written because mne exposes neither the per-signal sample counts (it resamples every signal to the
    fastest rate without a word) nor the unit strings as written (``raw._orig_units`` turns units it does not
    know, e.g. ``degC``, into ``n/a``). Reads only the fixed-layout header: 256 bytes, then per signal label
    (16 bytes), transducer (80), unit, physical min/max, digital min/max (8 each), prefilter (80), samples
    per record (8).
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(256)
        if len(head) < 256:
            return None
        try:
            ns = int(head[252:256].decode("latin-1").strip())
        except ValueError:
            return None
        if ns <= 0 or 256 * (ns + 1) > size:
            return None
        block = fh.read(256 * ns)

    def field(offset: int, width: int, i: int) -> bytes:
        return block[offset * ns + width * i : offset * ns + width * (i + 1)].strip()

    labels, units, n_samps = [], [], []
    for i in range(ns):
        label = field(0, 16, i)  # mne strips the bytes, then decodes latin-1: same here, so names match
        try:
            n = int(field(216, 8, i).decode("latin-1"))
        except ValueError:
            return None
        if label in _EDF_ANNOTATION_LABELS:
            continue
        labels.append(label.decode("latin-1"))
        units.append(field(96, 8, i).decode("latin-1"))
        n_samps.append(n)
    return labels, units, n_samps


def _read_edf_like(
    path: PathLike, fmt: str, user_id: str, session_id: str | None, stim_events: bool, annotations: bool,
    channel_types: Mapping[str, str] | None,
) -> Recording:
    mne = _mne()
    p = Path(path)
    read_raw: Callable[..., Any] = mne.io.read_raw_bdf if fmt == "bdf" else mne.io.read_raw_edf
    header = _edf_header(p)
    groups: list[list[str]] = []
    if header is not None:
        labels, _, n_samps = header
        by_rate: dict[int, list[str]] = {}
        for label, n in zip(labels, n_samps, strict=True):
            by_rate.setdefault(n, []).append(label)
        groups = [by_rate[n] for n in sorted(by_rate, reverse=True)]
    if len(groups) > 1:
        flat = [lab for g in groups for lab in g]
        dup = sorted({lab for lab in flat if flat.count(lab) > 1})
        if dup:
            raise LoaderError(
                f"{p}: signals at different rates share the labels {dup}; mne cannot read them apart at "
                "their native rates: rename the signals in the header (or export each rate separately)"
            )

    def open_raws(preload: bool) -> list[Any]:
        if len(groups) <= 1:
            return [read_raw(p, preload=preload, verbose="error")]
        return [read_raw(p, include=g, preload=preload, verbose="error") for g in groups]

    # Without the header's rate groups mne may resample slower signals, which it does per block when streamed
    raws, notes = _open_raws(open_raws, stream=header is not None)
    orig_units: dict[str, str] = {}
    if header is not None:
        for raw, group in zip(raws, groups or [header[0]], strict=True):
            members = set(group)  # mne renames duplicate labels (A, A-0 ...): map by position in the file
            units = [u for lab, u in zip(header[0], header[1], strict=True) if lab in members]
            if len(units) == len(raw.ch_names):
                orig_units.update(zip(raw.ch_names, units, strict=True))
    return recording_from_raw(
        raws, fmt=fmt, user_id=user_id, session_id=session_id or default_session_id(p), source_files=[p.name],
        stim_events=stim_events, annotations=annotations, channel_types=channel_types, orig_units=orig_units or None,
        reader_warnings=notes,
    )


@reader("edf", (".edf",), description="EDF/EDF+ (European Data Format, 16-bit) through mne")
def read_edf(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    stim_events: bool = True,
    annotations: bool = True,
    channel_types: Mapping[str, str] | None = None,
) -> Recording:
    """Read an EDF/EDF+ file (``mne.io.read_raw_edf``): streams by channel type in volts, annotations and
    decoded stim channels as events; signals at different rates become separate streams at native rates.

    Args:
        path: the ``.edf`` file.
        user_id, session_id: ids of the recording (session default: the file name).
        stim_events: decode stim channels (``Status``, ``Trigger``) into events.
        annotations: turn the file's annotations into events.
        channel_types: mne channel types to set, e.g. ``{"EOG1": "eog"}``.
    """
    return _read_edf_like(path, "edf", user_id, session_id, stim_events, annotations, channel_types)


@reader("bdf", (".bdf",), description="BDF (BioSemi 24-bit EDF) through mne")
def read_bdf(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    stim_events: bool = True,
    annotations: bool = True,
    channel_types: Mapping[str, str] | None = None,
) -> Recording:
    """Read a BioSemi BDF file (``mne.io.read_raw_bdf``); see :func:`read_edf`. The ``Status`` channel is a
    stim channel (mne keeps its 17 low bits) decoded into ``stim/Status`` events."""
    return _read_edf_like(path, "bdf", user_id, session_id, stim_events, annotations, channel_types)


def _brainvision_units(vhdr: Path, ch_names: Sequence[str]) -> dict[str, str] | None:
    """Channel name -> unit as written in the header's [Channel Infos] (missing or empty = µV, as mne reads
    it), or None when the entries do not line up with mne's channels.

    Hand-written because mne's ``raw._orig_units`` replaces units it does not know (``uS``, ``ARU``...) by
    ``n/a`` although it did scale some of them (``uS`` -> S), so the scaling cannot be told from it.
    """
    raw = vhdr.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    units: dict[int, str] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        if section.lower() != "[channel infos]" or line.startswith(";") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if not key.strip().lower().startswith("ch") or not key.strip()[2:].isdigit():
            continue
        props = value.split(",")
        unit = props[3] if len(props) >= 4 and props[3] else "\u00b5V"
        units[int(key.strip()[2:]) - 1] = unit.replace("\xc2", "")
    if sorted(units) != list(range(len(ch_names))):
        return None
    return {name: units[i] for i, name in enumerate(ch_names)}


def _brainvision_files(vhdr: Path) -> list[str]:
    """Names of the header and of the data and marker files it names (for meta['source_files'])."""
    names = [vhdr.name]
    try:
        text = vhdr.read_text(encoding="latin-1")
    except OSError:
        return names
    for line in text.splitlines()[:200]:
        key, _, value = line.partition("=")
        if key.strip() in ("DataFile", "MarkerFile") and value.strip():
            names.append(Path(value.strip()).name)
    return names


@reader("brainvision", (".vhdr", ".ahdr"), description="BrainVision (.vhdr + .eeg/.dat + .vmrk) through mne")
def read_brainvision(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    stim_events: bool = True,
    annotations: bool = True,
    channel_types: Mapping[str, str] | None = None,
) -> Recording:
    """Read a BrainVision recording from its header (``mne.io.read_raw_brainvision``). The header names the
    binary data file (``.eeg`` or ``.dat``) and the marker file; markers become events labelled
    ``<type>/<description>`` (``Stimulus/S253``), and the "New Segment" marker gives ``utc_anchor``.

    Channels with units mne does not treat as voltage (``BS``, ``µS``, ``ARU``, ``C``...) are ``misc``;
    a missing unit field means microvolts.
    """
    mne = _mne()
    p = Path(path)
    for other in ("DataFile", "MarkerFile"):
        _check_companion(p, other)
    (raw,), notes = _open_raws(
        lambda preload: [mne.io.read_raw_brainvision(p, preload=preload, verbose="error")]
    )
    return recording_from_raw(
        raw, fmt="brainvision", user_id=user_id, session_id=session_id or default_session_id(p),
        source_files=_brainvision_files(p), stim_events=stim_events, annotations=annotations,
        channel_types=channel_types, orig_units=_brainvision_units(p, raw.ch_names), reader_warnings=notes,
    )


def _check_companion(vhdr: Path, key: str) -> None:
    """Raise a clear error when the header names a data/marker file that is not beside it."""
    try:
        text = vhdr.read_text(encoding="latin-1")
    except OSError:
        return
    for line in text.splitlines()[:200]:
        k, _, value = line.partition("=")
        if k.strip() == key and value.strip():
            target = vhdr.parent / value.strip()
            if not target.is_file():
                raise LoaderError(
                    f"{vhdr}: the header's {key}={value.strip()} is not in {vhdr.parent}; a BrainVision recording "
                    "is three files (.vhdr, .vmrk, .eeg/.dat): copy them together, or fix the name in the header"
                )
            return


@reader("fif", (".fif", ".fif.gz"), description="FIF (MNE / Elekta-Neuromag) raw files through mne")
def read_fif(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    stim_events: bool = True,
    annotations: bool = True,
    channel_types: Mapping[str, str] | None = None,
) -> Recording:
    """Read a raw FIF file (``mne.io.read_raw_fif``; ``.fif.gz`` too). Split files (``-1.fif``...) next to
    the first are followed by mne. MEG channels become ``mag``/``grad`` other streams (T, T/m)."""
    mne = _mne()
    p = Path(path)
    (raw,), notes = _open_raws(
        lambda preload: [mne.io.read_raw_fif(p, preload=preload, verbose="error")]
    )
    files = [Path(f).name for f in raw.filenames if f is not None] or [p.name]
    return recording_from_raw(
        raw, fmt="fif", user_id=user_id, session_id=session_id or default_session_id(p), source_files=files,
        stim_events=stim_events, annotations=annotations, channel_types=channel_types, reader_warnings=notes,
    )


@reader("eeglab", (".set",), description="EEGLAB .set (+ .fdt) continuous data through mne")
def read_eeglab(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    stim_events: bool = True,
    annotations: bool = True,
    channel_types: Mapping[str, str] | None = None,
) -> Recording:
    """Read a continuous EEGLAB dataset (``mne.io.read_raw_eeglab``); the ``.fdt`` data file, when the
    ``.set`` names one, must be beside it. EEGLAB events become events (mne turns them into annotations).
    Epoched ``.set`` files are refused (mne says so)."""
    mne = _mne()
    p = Path(path)
    (raw,), notes = _open_raws(
        lambda preload: [mne.io.read_raw_eeglab(p, preload=preload, verbose="error")]
    )
    files = [p.name] + [Path(f).name for f in raw.filenames if f is not None and Path(f).name != p.name]
    return recording_from_raw(
        raw, fmt="eeglab", user_id=user_id, session_id=session_id or default_session_id(p), source_files=files,
        stim_events=stim_events, annotations=annotations, channel_types=channel_types, reader_warnings=notes,
    )

