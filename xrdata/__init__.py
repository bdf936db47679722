"""xrdata: multi-modal XR recordings in per-user chunked stores.

Public API::

    Stream, Recording          the data model (xrdata.model)
    open_store, Store          the per-user Zarr store with its Parquet catalog (xrdata.store)
    windows, Window            time-aligned multi-modal windows for training (xrdata.windowing)
    validate, Violation        schema validation (xrdata.validation)
    XRDataError                base of every error raised on bad input (xrdata.errors)

Heavy optional libraries (torch, mne, librosa, cv2, flwr) are imported only by the functions that need
them, never by ``import xrdata``.
"""

from xrdata.errors import XRDataError
from xrdata.model import Recording, Stream
from xrdata.store import Store, open_store
from xrdata.validation import Violation, validate
from xrdata.windowing import Window, windows

__version__ = "0.1.0"
__all__ = [
    "Recording",
    "Store",
    "Stream",
    "Violation",
    "Window",
    "XRDataError",
    "__version__",
    "open_store",
    "validate",
    "windows",
]
