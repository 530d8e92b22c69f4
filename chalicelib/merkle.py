"""RFC 6962 (Certificate Transparency) Merkle trees over the trace files of one digest.

The leaves are the digest's `logFiles`, in the order the digest lists them (oldest delivery
first). A leaf's data is the 32-byte SHA-256 of the uncompressed trace file followed by the
UTF-8 bytes of `<bucket>/<key>`, so a proof binds the file's content and its name:

    leaf hash  = SHA-256(0x00 || sha256(file) || "<bucket>/<key>")
    node hash  = SHA-256(0x01 || left || right)
    empty tree = SHA-256("")

The tree splits at the largest power of two smaller than n (RFC 6962 section 2.1), and audit paths
are those of section 2.1.1, verified as RFC 9162 section 2.1.3.2 describes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ALGORITHM = "RFC6962-SHA-256"


def leaf_data(file_sha256_hex: str, bucket: str, key: str) -> bytes:
    return bytes.fromhex(file_sha256_hex) + f"{bucket}/{key}".encode()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the leaf data, MTH(D[n])."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [leaf_hash(d) for d in leaves]
    return _subtree(level)


def _subtree(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_subtree(hashes[:k]), _subtree(hashes[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path PATH(m, D[n]) for leaf `index`, nearest the leaf first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(index, [leaf_hash(d) for d in leaves])


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*_path(m, hashes[:k]), _subtree(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _subtree(hashes[:k])]


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that `proof` leads to from leaf data `leaf` at `index` of `size`, or None when
    the proof has the wrong length for that position (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None
