"""Reading raw files as a stream of numbered text lines, in constant memory.

Every parser reads through `Source`, so gzip (found by its magic bytes, not the file name), a UTF-8
byte-order mark, CRLF line ends, undecodable bytes, over-long lines and a gzip stream that breaks
off are handled once, here. Lines that cannot become text are handed to the reject callback with
their physical line number instead of stopping the load.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 20
# A line longer than this is rejected in pieces instead of growing a buffer without bound.
MAX_LINE_BYTES = 16 << 20
# A gzip file stops at this much output, or this many times its own size (at least
# GZIP_MIN_LIMIT), whichever is less: real logs compress 5-20x, a gzip bomb 1000x.
MAX_GZIP_OUTPUT = 64 << 30
MAX_GZIP_RATIO = 200
GZIP_MIN_LIMIT = 256 << 20
# Compressed bytes fed to zlib at once: bounds the output of one call (deflate tops out near
# 1000:1) so even a bomb never holds more than a few MB in memory.
GZIP_FEED = 8 << 10

RejectFn = Callable[[int, str, str], None]
ProgressFn = Callable[[int], None]


class FileDigest:
    """sha256 of a file's bytes, taken while a Source reads them.

    The loader needs the checksum only to tell whether the same bytes were loaded before, and a
    separate pass over a big file before the load costs about 5% of it; hashing the chunks the
    parser reads anyway overlaps with the COPY. If the reader stopped before the end, the rest
    of the file is read here; if it reached the end, bytes appended since are not hashed (they
    were not loaded either).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._hash = hashlib.sha256()
        self._size = 0
        self.complete = False  # set by the reader at the end of the file

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)

    def hexdigest(self) -> str:
        if not self.complete:
            with open(self.path, "rb") as fh:
                fh.seek(self._size)
                while chunk := fh.read(CHUNK_SIZE):
                    self.update(chunk)
            self.complete = True
        return self._hash.hexdigest()


def _noop_reject(lineno: int, reason: str, raw: str) -> None:
    return None


class Source:
    """One raw file: decompressed bytes, text chunks or numbered lines, with progress on bytes read.

    `progress(n)` is called with the number of file bytes (compressed bytes for gzip) read since the
    last call, so a progress bar over file sizes ends at 100% for plain and gzip files alike.
    """

    def __init__(
        self,
        path: str | Path,
        reject: RejectFn | None = None,
        progress: ProgressFn | None = None,
        chunk_size: int | None = None,
        digest: FileDigest | None = None,
        writing: bool = False,
    ) -> None:
        self.path = Path(path)
        self.digest = digest
        self.reject = reject or _noop_reject
        self.progress = progress
        self.chunk_size = chunk_size or CHUNK_SIZE
        self.gzip = False
        # Set when a gzip stream ends early or is corrupt: the reason given to what is lost.
        self.broken: str | None = None
        self.lines_read = 0
        # The file may still be being written (changed moments ago): an unfinished end (a last
        # line without its line end, a gzip stream that stops) is held back, not loaded or
        # rejected, and `held_back` says how many bytes; the complete file loads it later.
        self.writing = writing
        self.held_back = 0
        self.notes: list[str] = []  # limits hit while reading, one line each

    # -- bytes -----------------------------------------------------------------------------------
    def byte_chunks(self) -> Iterator[bytes]:
        """Decompressed file content in chunks, the BOM removed; sets `broken` on a bad gzip."""
        first = True
        for chunk in self._decompressed():
            if first:
                first = False
                if chunk.startswith(BOM):
                    chunk = chunk[len(BOM) :]
            if chunk:
                yield chunk

    def _raw_chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while True:
                chunk = fh.read(self.chunk_size)
                if not chunk:
                    if self.digest is not None:
                        self.digest.complete = True
                    return
                if self.progress is not None:
                    self.progress(len(chunk))
                if self.digest is not None:
                    self.digest.update(chunk)
                yield chunk

    def _decompressed(self) -> Iterator[bytes]:
        raw = self._raw_chunks()
        head = next(raw, b"")
        if not head.startswith(GZIP_MAGIC):
            if head:
                yield head
            yield from raw
            return
        self.gzip = True
        limit = min(MAX_GZIP_OUTPUT, max(GZIP_MIN_LIMIT, MAX_GZIP_RATIO * self.path.stat().st_size))
        produced = 0
        # zlib directly rather than gzip.GzipFile: on a truncated stream we keep every byte that
        # was decompressed before the break, and we know exactly where it broke.
        decomp = zlib.decompressobj(wbits=31)
        in_member = False  # fed bytes to the current member and not yet at its end
        pending: bytes | memoryview = memoryview(head)  # sliced without copying
        while True:
            while pending:
                in_member = True
                piece, pending = pending[:GZIP_FEED], pending[GZIP_FEED:]
                try:
                    out = decomp.decompress(piece)
                except zlib.error:
                    self.broken = "corrupt gzip"
                    return
                if out:
                    produced += len(out)
                    if produced > limit:
                        self.broken = "gzip over size limit"
                        self.notes.append(
                            f"gzip output passed {limit:,} bytes: the rest of the file is not read"
                        )
                        return
                    yield out
                if decomp.eof:
                    in_member = False
                    pending = decomp.unused_data + pending  # bytes again
                    # Concatenated gzip members (e.g. `cat a.gz b.gz`) are one stream.
                    decomp = zlib.decompressobj(wbits=31)
                    if pending and bytes(pending[:2]) != GZIP_MAGIC:
                        self.broken = "corrupt gzip"
                        return
            nxt = next(raw, None)
            if nxt is None:
                break
            pending = memoryview(nxt)
        if in_member:
            tail = decomp.flush()
            if tail:
                yield tail
            self.broken = "truncated gzip"

    def head(self, size: int = 65536) -> bytes:
        """The first decompressed bytes (without BOM), for format sniffing."""
        out = b""
        saved = self.progress, self.digest
        self.progress = self.digest = None  # a peek: neither read progress nor the checksum
        try:
            for chunk in self.byte_chunks():
                out += chunk
                if len(out) >= size:
                    break
        finally:
            self.progress, self.digest = saved
            self.broken = None
        return out[:size]

    # -- text ------------------------------------------------------------------------------------
    def text_chunks(self) -> Iterator[str]:
        """Decoded text in chunks that end on a line boundary (for the streaming JSON array reader).

        Invalid UTF-8 becomes U+FFFD here; the JSON reader rejects the element it lands in only if
        the element itself does not parse, which is the best a byte stream without lines allows.
        """
        carry = b""
        for chunk in self.byte_chunks():
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n")
            if cut < 0 and len(data) < MAX_LINE_BYTES:
                carry = data
                continue
            if cut < 0:
                cut = len(data) - 1
                while cut > 0 and (data[cut] & 0xC0) == 0x80:
                    cut -= 1
                cut -= 1
            carry = data[cut + 1 :]
            yield data[: cut + 1].decode("utf-8", "replace").replace("\r\n", "\n")
        if carry:
            yield carry.decode("utf-8", "replace").replace("\r\n", "\n")

    def blocks(self) -> Iterator[tuple[int, str]]:
        """(number of the first line, text of whole lines) in chunks of about `chunk_size`.

        Every line in a block ends with "\n" (a last line without one gets it), CRLF is LF.
        Lines that are not UTF-8 or longer than MAX_LINE_BYTES go to the reject callback. After
        a broken gzip stream the partial last line is rejected with the gzip reason, and so is
        the break itself when it fell on a line boundary, so the loss is always visible.
        """
        lineno = 1  # number of the next line
        carry = b""
        oversize = False  # skipping the rest of an over-long line
        for chunk in self.byte_chunks():
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_LINE_BYTES:
                    if not oversize:
                        self.reject(lineno, "line too long", _preview(data))
                    oversize = True
                    carry = b""
                else:
                    carry = data
                continue
            carry = data[cut + 1 :]
            block = data[: cut + 1]
            if oversize:
                # The first line of this block is the tail of the over-long line: skip it.
                block = block[block.find(b"\n") + 1 :]
                lineno += 1
                oversize = False
                if not block:
                    continue
            yield from self._decode(lineno, block)
            lineno += block.count(b"\n")
        if oversize:
            lineno += 1
            carry = b""
        if self.writing and (carry or self.broken == "truncated gzip"):
            self.held_back = max(len(carry), 1)
        elif self.broken:
            self.reject(lineno, self.broken, carry.decode("utf-8", "replace"))
            lineno += 1
        elif carry:
            yield from self._decode(lineno, carry + b"\n")
            lineno += 1
        self.lines_read = lineno - 1

    def counted_blocks(self) -> Iterator[tuple[int, str, int]]:
        """blocks() with the number of lines in each, read off where the next block starts.

        This saves counting every block twice. Where this reader dropped lines between two
        blocks (rejected ones), the number is too high, never too low.
        """
        blocks = self.blocks()
        prev = next(blocks, None)
        for nxt in blocks:
            yield prev[0], prev[1], nxt[0] - prev[0]
            prev = nxt
        if prev is not None:
            yield prev[0], prev[1], self.lines_read + 1 - prev[0]

    def _decode(self, lineno: int, block: bytes) -> Iterator[tuple[int, str]]:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            # Rare: decode line by line, rejecting only the lines that are not UTF-8.
            for offset, raw_line in enumerate(block.split(b"\n")[:-1]):
                try:
                    line = raw_line.decode("utf-8")
                except UnicodeDecodeError:
                    self.reject(
                        lineno + offset, "invalid UTF-8", raw_line.decode("utf-8", "replace")
                    )
                    continue
                if line.endswith("\r"):
                    line = line[:-1]
                yield lineno + offset, line + "\n"
            return
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        yield lineno, text

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) for every physical line, 1-based, line end removed."""
        for first, text in self.blocks():
            parts = text.split("\n")
            parts.pop()  # the block ends with "\n": the last part is empty
            yield from enumerate(parts, first)


def _preview(data: bytes, limit: int = 4096) -> str:
    return data[:limit].decode("utf-8", "replace")
