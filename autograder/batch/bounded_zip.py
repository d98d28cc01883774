"""A zip read within a cap on its entries, whatever its directory holds.

zipfile reads a zip's whole central directory when it opens it (200,000 entries:
1.6 s of CPU and hundreds of MiB) and decodes a name flagged UTF-8 strictly (a
UnicodeDecodeError for the whole zip). open_zip walks the directory itself, entry
by entry, up to the cap, then hands zipfile a view of the stream: cut after the
last entry walked and closed by new end records, the bad names' flag cleared in
place. zipfile still does all the reading of entries (methods, CRCs, zip64).
"""

from __future__ import annotations

import bisect
import io
import struct
import zipfile

# The zip format's records, as zipfile reads them: end of central directory (and its zip64 form), directory entry.
END_RECORD, END_RECORD_SIZE, END_COMMENT_MAX = b"PK\x05\x06", 22, 1 << 16
ZIP64_LOCATOR, ZIP64_LOCATOR_SIZE, ZIP64_END_RECORD, ZIP64_END_RECORD_SIZE = b"PK\x06\x07", 20, b"PK\x06\x06", 56
DIRECTORY_ENTRY, DIRECTORY_ENTRY_SIZE = b"PK\x01\x02", 46
UTF8_NAME = 0x800  # general purpose flag: the entry's name is UTF-8


def open_zip(stream, cap: int) -> tuple[zipfile.ZipFile, dict[int, str], int]:
    """The zip in stream as zipfile reads it, its directory read only up to cap entries; the entries whose name is
    flagged UTF-8 but is not (index -> the name, undecodable bytes replaced: zipfile, shown the flag cleared, reads
    it as cp437); and, when entries were left unread, how many the zip holds (as it says; at least cap + 1), else 0."""
    end = _directory_end(stream)
    if end is None:
        return zipfile.ZipFile(stream), {}, 0  # zipfile says what is wrong
    start, size, offset, total, zip64 = end
    patches, misnamed, walked, index = {}, {}, 0, 0
    stream.seek(start)
    while walked < size and index < cap:
        header = stream.read(DIRECTORY_ENTRY_SIZE)
        if len(header) < DIRECTORY_ENTRY_SIZE or header[:4] != DIRECTORY_ENTRY:
            break  # damaged: zipfile says so
        (flags,) = struct.unpack_from("<H", header, 8)
        name_length, extra_length, comment_length = struct.unpack_from("<3H", header, 28)
        name = stream.read(name_length)
        stream.seek(extra_length + comment_length, io.SEEK_CUR)
        if flags & UTF8_NAME:
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                misnamed[index] = name.decode("utf-8", "replace")
                patches[start + walked + 8] = struct.pack("<H", flags & ~UTF8_NAME)
        walked += DIRECTORY_ENTRY_SIZE + name_length + extra_length + comment_length
        index += 1
    if index == cap and walked < size:  # cut: the directory ends where the walk stopped
        view = _ZipView(stream, start + walked, patches, _end_records(index, walked, offset, zip64))
        return zipfile.ZipFile(view), misnamed, max(total, cap + 1)
    return zipfile.ZipFile(_ZipView(stream, stream.seek(0, io.SEEK_END), patches) if patches else stream), misnamed, 0


def _directory_end(stream) -> tuple[int, int, int, int, bool] | None:
    """The zip's central directory as zipfile will find it (mirroring zipfile._EndRecData): where it starts, its
    size in bytes, its offset as recorded, how many entries it says it holds, whether zip64 records say so;
    None when there is no end record."""
    file_size = stream.seek(0, io.SEEK_END)
    if file_size < END_RECORD_SIZE:
        return None
    stream.seek(file_size - END_RECORD_SIZE)
    last = stream.read(END_RECORD_SIZE)
    if last[:4] == END_RECORD and last[-2:] == b"\0\0":
        position = file_size - END_RECORD_SIZE
    else:  # an archive comment follows the record
        tail_start = max(file_size - END_COMMENT_MAX - END_RECORD_SIZE, 0)
        stream.seek(tail_start)
        tail = stream.read()
        found = tail.rfind(END_RECORD)
        if found < 0 or len(tail) - found < END_RECORD_SIZE:
            return None
        position = tail_start + found
    stream.seek(position)
    total, size, offset = struct.unpack_from("<HLL", stream.read(END_RECORD_SIZE), 10)
    records64 = position - ZIP64_LOCATOR_SIZE - ZIP64_END_RECORD_SIZE
    if records64 >= 0:
        stream.seek(records64)
        record64, locator = stream.read(ZIP64_END_RECORD_SIZE), stream.read(ZIP64_LOCATOR_SIZE)
        if locator[:4] == ZIP64_LOCATOR and record64[:4] == ZIP64_END_RECORD:
            total, size, offset = struct.unpack_from("<QQQ", record64, 32)
            return (records64 - size, size, offset, total, True) if records64 >= size else None
    return (position - size, size, offset, total, False) if position >= size else None


def _end_records(count: int, size: int, offset: int, zip64: bool) -> bytes:
    """End records for a directory of count entries and size bytes at offset (as recorded), placed right after it."""
    if not zip64:
        return struct.pack("<4s4H2LH", END_RECORD, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), size, offset, 0)
    return (struct.pack("<4sQ2H2L4Q", ZIP64_END_RECORD, ZIP64_END_RECORD_SIZE - 12, 45, 45, 0, 0, count, count, size, offset)
            + struct.pack("<4sLQL", ZIP64_LOCATOR, 0, 0, 1)  # zipfile looks for the record right before its locator
            + struct.pack("<4s4H2LH", END_RECORD, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


class _ZipView(io.RawIOBase):
    """A seekable binary stream's first `length` bytes, some replaced in place (same length, so nothing
    moves), followed by `tail`: what zipfile reads in place of a zip whose directory intake cut or mended."""

    def __init__(self, stream, length: int, patches: dict[int, bytes], tail: bytes = b""):
        super().__init__()
        self._stream, self._length, self._tail, self._position = stream, length, tail, 0
        self._patches = sorted(patches.items())
        self._starts = [position for position, _ in self._patches]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length + len(self._tail)}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        buffer, count = memoryview(buffer).cast("B"), 0
        if self._position < self._length:
            self._stream.seek(self._position)
            count = self._stream.readinto(buffer[: self._length - self._position]) or 0
            self._patch(buffer, self._position, count)
        if self._position + count >= self._length:
            at = self._position + count - self._length
            piece = self._tail[at : at + len(buffer) - count]
            buffer[count : count + len(piece)] = piece
            count += len(piece)
        self._position += count
        return count

    def _patch(self, buffer, position: int, count: int) -> None:
        for at, replacement in self._patches[bisect.bisect_left(self._starts, position - 8) :]:  # patches are 2 bytes
            if at >= position + count:
                break
            for offset, byte in enumerate(replacement):
                if position <= at + offset < position + count:
                    buffer[at + offset - position] = byte
