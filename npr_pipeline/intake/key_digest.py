"""A digest of a monthly submission's patient keys, so an ord and its ide compare without a read.

Intake checks that an ide covers exactly the patients of its ord (``ide_mismatch``). Reading
both submissions' key columns back from their part files for every pair cost the main process
~11 CPU-seconds on the national April set (docs/benchmarks.md, session 10); the reader holds
the keys anyway while it writes the rows, so it digests them there, in a worker, and the main
process compares two digests. Equal digests mean equal key sets; only different ones (or a
missing digest: a partner committed before digests existed, or by an earlier run) need the
sets, to name examples of the difference.

The digest is BLAKE2b-128 of the sorted distinct keys, each ended by NUL: XML character data
cannot hold NUL, so the bytes name exactly one set (ended, not joined: the empty set and the
set of one empty key differ). Arrow finds the distinct keys; Python sorts them (code point
order is the UTF-8 bytes' order, which Arrow's sort gave; the keys mostly come in order, which
Python's sort does in one pass) and joins them with one ``str.join``: an f-string per key and
Arrow's sort and take cost twice as much on the national April's ~1.7 M keys, and Arrow's
element-wise join more still (docs/benchmarks.md, session 12).
"""

from __future__ import annotations

from hashlib import blake2b

import pyarrow as pa
import pyarrow.compute as pc

# The key compared between an ord and its ide: the table and column holding each message
# type's patient numbers (the ord's patients, the ide's idents).
PAIRED_KEYS = {"NPR_ORD": ("patients", "pasientNr"), "NPR_IDE": ("idents", "pid")}
DIGEST_BYTES = 16


def key_digest(keys: pa.Array | pa.ChunkedArray) -> bytes | None:
    """The digest of the set of ``keys`` (strings); None if any key is missing (null), which
    the set comparison, not a digest, must judge."""
    if keys.null_count:
        return None
    ordered = pc.unique(keys).to_pylist()
    ordered.sort()
    digest = blake2b("\0".join(ordered).encode(), digest_size=DIGEST_BYTES)
    if ordered:
        digest.update(b"\0")  # the last key's end
    return digest.digest()


def record_keys(message_type: str | None, table: str, frame: pa.Table) -> bytes | None:
    """The key digest of a submission of ``message_type`` if ``frame`` is its ``table`` of
    patient keys, else None (another table, or a type that is not one of the pair)."""
    key = PAIRED_KEYS.get(message_type or "")
    if key is None or key[0] != table:
        return None
    return key_digest(frame.column(key[1]))
