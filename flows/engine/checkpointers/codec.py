"""Bytes at rest: optional zlib compression and Fernet encryption with key rotation.

Every stored blob starts with one marker byte saying how it was written, so
settings can change (compression switched on, a key rotated) without making
old checkpoints unreadable.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import SerializationError

if TYPE_CHECKING:  # an optional dependency (the 'encryption' extra), imported when keys are given
    from cryptography.fernet import MultiFernet

PLAIN = b"j"
ZLIB = b"z"
FERNET = b"f"


class BlobCodec:
    """Encodes serialised values for storage.

    ``encryption_keys`` is a list of Fernet keys: the first encrypts, all of them
    decrypt, so a new key goes first and old ones stay until data is rewritten.
    ``compress_min_bytes`` skips compression for blobs too small to gain from it.
    With keys, a blob that is not encrypted is refused on read (someone wrote
    it around the codec), unless ``read_unencrypted`` — the switch for the
    time data written before encryption was turned on is still there.
    """

    def __init__(
        self,
        *,
        compress: bool = False,
        compress_min_bytes: int = 256,
        encryption_keys: Sequence[str | bytes] | None = None,
        read_unencrypted: bool = False,
    ) -> None:
        if encryption_keys is not None and not isinstance(encryption_keys, (str, bytes)) and not encryption_keys:
            raise ValueError("encryption_keys is empty: give at least one Fernet key, or None for no encryption")
        self.compress = compress
        self.compress_min_bytes = compress_min_bytes
        self._fernet = _multi_fernet(encryption_keys) if encryption_keys is not None else None
        self.read_unencrypted = read_unencrypted

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def encode(self, data: bytes) -> bytes:
        if self.compress and len(data) >= self.compress_min_bytes:
            packed = ZLIB + zlib.compress(data, 6)
        else:
            packed = PLAIN + data
        if self._fernet is not None:
            return FERNET + self._fernet.encrypt(packed)
        return packed

    def decode(self, blob: bytes) -> bytes:
        blob = bytes(blob)
        marker, body = blob[:1], blob[1:]
        if marker == FERNET:
            if self._fernet is None:
                raise SerializationError(
                    "stored data is encrypted but no encryption_keys are configured"
                )
            inner = self._decrypt(self._fernet, body)
            marker, body = inner[:1], inner[1:]
        elif self._fernet is not None and not self.read_unencrypted:
            raise SerializationError(
                "stored data is not encrypted although encryption_keys are configured (written around the "
                "checkpointer?); read_unencrypted=True reads data stored before encryption was turned on"
            )
        if marker == PLAIN:
            return body
        if marker == ZLIB:
            return zlib.decompress(body)
        raise SerializationError(f"unknown storage marker {marker!r}")

    def _decrypt(self, fernet: MultiFernet, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return fernet.decrypt(token)
        except InvalidToken as exc:
            raise SerializationError(
                "cannot decrypt stored data: none of the configured encryption_keys fits"
            ) from exc


def _multi_fernet(keys: Sequence[str | bytes]) -> MultiFernet:
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "encryption at rest needs the 'cryptography' package: pip install 'django-persistent-flows[encryption]'"
        ) from exc
    if isinstance(keys, (str, bytes)):
        raise TypeError("encryption_keys must be a list of Fernet keys, newest first")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ValueError(f"invalid Fernet key in encryption_keys: {exc}") from exc
