"""Header checks for EDF/EDF+ and BDF files, run by every loader before MNE reads one.

MNE reads two kinds of broken files without an error, only with a warning that the loaders
hide (they read with ``verbose="error"``) or that is easily overlooked in a log:

* **truncated files**: fewer data records than the header declares (a copy that stopped
  early, a recording that was never closed). MNE infers the length from the file size and
  returns what is there, e.g. half a recording.
* **undefined scaling**: a signal whose digital maximum equals its digital minimum (or
  physical maximum equals physical minimum). MNE then substitutes a range of 1 and reads
  the channel with a made-up gain, tens of volts instead of microvolts; after a common
  average reference that channel leaks into every other one.

MNE exposes neither check (its header reader is private and the scaling is replaced before
anything public sees it), so :func:`check_edf` parses the fixed-layout header itself, only
as far as needed: 256 bytes of main header (number of header bytes at byte 184, number of
data records at 236, record duration at 244, number of signals at 252), then per signal the
fields label 16, transducer 80, physical dimension 8, physical min 8, physical max 8,
digital min 8, digital max 8, prefiltering 80, samples per record 8 and reserved 32 bytes,
each field stored for all signals in turn. EDF stores 2-byte samples, BDF 3-byte samples
(MNE tells the two apart by the file extension, and so does this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

__all__ = ["EDF_EXTENSIONS", "EDFHeader", "check_edf", "fix_hint", "read_edf_header"]

#: File endings checked by :func:`check_edf` (lower case).
EDF_EXTENSIONS = (".edf", ".bdf")


def fix_hint(source: str, subject: str | None = None) -> str:
    """The advice for a refused file: get it again from ``source`` or leave its subject out."""
    who = f"subject {subject}" if subject else "its subject"
    return f"{source}, or leave {who} out (list the other subjects' numbers in dataset.subjects)"


#: Default advice when a file is refused; loaders pass their own source's.
DEFAULT_FIX = fix_hint("copy or export the file again from its source")
_MAIN = 256  # bytes of the main header
#: Per-signal header fields in file order: (name, bytes); each is stored for all signals.
_FIELDS = (("label", 16), ("transducer", 80), ("unit", 8), ("physical_min", 8),
           ("physical_max", 8), ("digital_min", 8), ("digital_max", 8),
           ("prefiltering", 80), ("samples", 8), ("reserved", 32))
_NUMERIC = ("physical_min", "physical_max", "digital_min", "digital_max", "samples")
#: Labels of EDF+/BDF+ annotation signals: they hold text, not samples to scale.
_ANNOTATIONS = ("EDF Annotations", "BDF Annotations")


@dataclass(frozen=True)
class EDFHeader:
    """What :func:`read_edf_header` reads of an EDF/BDF header, and the file's size."""

    path: Path
    kind: str  # "EDF" or "BDF"
    header_bytes: int
    n_records: int  # as declared; -1 = unknown (recording not closed)
    record_duration: float  # seconds
    labels: list[str]
    physical_min: list[float]
    physical_max: list[float]
    digital_min: list[float]
    digital_max: list[float]
    samples: list[int]  # per data record, per signal
    file_bytes: int

    @property
    def bytes_per_sample(self) -> int:
        """2 for EDF (16-bit samples), 3 for BDF (24-bit samples)."""
        return 3 if self.kind == "BDF" else 2

    @property
    def record_bytes(self) -> int:
        """Bytes of one data record (all signals)."""
        return sum(self.samples) * self.bytes_per_sample

    @property
    def records_held(self) -> int:
        """Complete data records in the file (MNE reads this many)."""
        if self.record_bytes <= 0:
            return 0
        return max(self.file_bytes - self.header_bytes, 0) // self.record_bytes


def _text(raw: bytes) -> str:
    # as MNE reads header fields: latin-1, cut at the first NUL byte
    return raw.decode("latin-1").split("\x00")[0].strip()


def read_edf_header(path: str | Path, fix: str = DEFAULT_FIX) -> EDFHeader:
    """Read the parts of an EDF/BDF header that :func:`check_edf` needs.

    Raises
    ------
    DataError
        If the file ends inside its header or a numeric field is not a number; the message
        names the file and ``fix``.
    """
    path = Path(path)
    kind = "BDF" if path.name.lower().endswith(".bdf") else "EDF"
    unreadable = f"{path} could not be read as {kind}"
    try:
        with path.open("rb") as fid:
            main = fid.read(_MAIN)
            file_bytes = path.stat().st_size
            if len(main) < _MAIN:
                raise DataError(f"{unreadable}: the file ends inside its header ({len(main)} "
                                f"bytes); {fix}")
            try:
                header_bytes = int(_text(main[184:192]))
                n_records = int(_text(main[236:244]))
                duration = float(_text(main[244:252]).replace(",", "."))
                n_signals = int(_text(main[252:256]))
            except ValueError as exc:
                raise DataError(f"{unreadable}: its main header is malformed ({exc}); "
                                f"{fix}") from exc
            needed = _MAIN * (n_signals + 1)
            signals = fid.read(needed - _MAIN)
    except OSError as exc:
        raise DataError(f"{unreadable} ({exc}); {fix}") from exc
    if n_signals < 1 or header_bytes != needed:
        raise DataError(f"{unreadable}: its header declares {n_signals} signal(s) and "
                        f"{header_bytes} header bytes (expected {needed}); {fix}")
    if len(signals) < needed - _MAIN:
        raise DataError(f"{unreadable}: the file ends inside its header ({_MAIN + len(signals)} "
                        f"of {needed} bytes); {fix}")
    fields: dict[str, list[str]] = {}
    offset = 0
    for name, width in _FIELDS:
        fields[name] = [_text(signals[offset + k * width:offset + (k + 1) * width])
                        for k in range(n_signals)]
        offset += width * n_signals
    numbers: dict[str, list[float]] = {}
    for name in _NUMERIC:
        try:
            numbers[name] = [float(v.replace(",", ".")) for v in fields[name]]
        except ValueError as exc:
            raise DataError(f"{unreadable}: header field {name.replace('_', ' ')} is malformed "
                            f"({exc}); {fix}") from exc
    return EDFHeader(
        path=path, kind=kind, header_bytes=header_bytes, n_records=n_records,
        record_duration=duration, labels=fields["label"],
        physical_min=numbers["physical_min"], physical_max=numbers["physical_max"],
        digital_min=numbers["digital_min"], digital_max=numbers["digital_max"],
        samples=[int(v) for v in numbers["samples"]], file_bytes=file_bytes,
    )


def check_edf(path: str | Path, fix: str = DEFAULT_FIX) -> EDFHeader:
    """Refuse an EDF/BDF file that MNE would read wrongly without an error.

    Parameters
    ----------
    path : str | Path
        The ``.edf`` or ``.bdf`` file.
    fix : str
        What the user should do, appended to every message (the loader's source).

    Returns
    -------
    EDFHeader
        The header, when the file passes.

    Raises
    ------
    DataError
        Naming the file, what is wrong and ``fix``, when the file holds fewer (or more)
        complete data records than its header declares, the header does not state the
        number of records (-1), or a signal other than EDF+/BDF+ annotations has digital
        max == digital min or physical max == physical min (undefined scaling).
    """
    header = read_edf_header(path, fix)
    declared, held = header.n_records, header.records_held
    seconds = header.record_duration

    def span(n: int) -> str:
        return f"{n} data record(s) ({n * seconds:g} s)" if seconds > 0 else \
            f"{n} data record(s)"

    if declared < 0:
        raise DataError(
            f"{header.path} is incomplete: its header does not state the number of data "
            f"records ({declared}: the recording was not closed properly), the file holds "
            f"{span(held)}; {fix}"
        )
    if held != declared:
        what = "is truncated" if held < declared else "does not match its header"
        raise DataError(f"{header.path} {what}: the header declares {span(declared)}, the "
                        f"file holds {span(held)}; {fix}")
    bad = []
    for k, label in enumerate(header.labels):
        if label in _ANNOTATIONS:
            continue
        if header.digital_max[k] == header.digital_min[k]:
            bad.append(f"{label!r} (digital max = digital min = {header.digital_min[k]:g})")
        elif header.physical_max[k] == header.physical_min[k]:
            bad.append(f"{label!r} (physical max = physical min = {header.physical_min[k]:g})")
    if bad:
        raise DataError(
            f"{header.path} has undefined scaling on signal(s) {', '.join(bad)}: MNE would "
            f"read such a signal with a made-up gain (volts instead of microvolts); {fix}"
        )
    return header
