"""Compression and encryption at rest."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from flows.engine.checkpointers.codec import BlobCodec
from flows.engine.errors import SerializationError

DATA = b'{"messages": ["' + b"hello " * 100 + b'"]}'


def test_plain_and_compressed_round_trip_and_compression_shrinks():
    plain, packed = BlobCodec(), BlobCodec(compress=True)
    assert plain.decode(plain.encode(DATA)) == DATA
    assert packed.decode(packed.encode(DATA)) == DATA
    assert len(packed.encode(DATA)) < len(DATA) / 5
    assert packed.encode(b"tiny") == b"jtiny"  # below compress_min_bytes
    assert plain.decode(packed.encode(DATA)) == DATA  # readable whatever the setting


def test_encryption_hides_data_and_rotates_keys():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    before = BlobCodec(encryption_keys=[old]).encode(DATA)
    assert b"hello" not in before
    rotated = BlobCodec(compress=True, encryption_keys=[new, old])
    assert rotated.decode(before) == DATA
    after = rotated.encode(DATA)
    assert BlobCodec(encryption_keys=[new]).decode(after) == DATA
    with pytest.raises(SerializationError, match="none of the configured encryption_keys"):
        BlobCodec(encryption_keys=[old]).decode(after)
    with pytest.raises(SerializationError, match="no encryption_keys are configured"):
        BlobCodec().decode(after)


def test_bad_keys_are_clear_errors():
    with pytest.raises(TypeError, match="list of Fernet keys"):
        BlobCodec(encryption_keys="not-a-list")
    with pytest.raises(ValueError, match="invalid Fernet key"):
        BlobCodec(encryption_keys=["short"])


def test_an_empty_key_list_is_a_configuration_error_not_plaintext():
    with pytest.raises(ValueError, match="encryption_keys is empty"):
        BlobCodec(encryption_keys=[])
    from flows.engine.checkpointers import InMemoryCheckpointer

    with pytest.raises(ValueError, match="encryption_keys is empty"):
        InMemoryCheckpointer(encryption_keys=[])


def test_with_keys_a_blob_that_is_not_encrypted_is_refused_unless_asked_for():
    """A row written around the codec (b'j999') is not taken for data; a migration switch reads old plaintext."""
    key = Fernet.generate_key()
    for blob in (b"j999", BlobCodec(compress=True).encode(DATA)):
        with pytest.raises(SerializationError, match="not encrypted although encryption_keys are configured"):
            BlobCodec(encryption_keys=[key]).decode(blob)
    migrating = BlobCodec(encryption_keys=[key], read_unencrypted=True)
    assert migrating.decode(b"j999") == b"999"
    assert migrating.decode(migrating.encode(DATA)) == DATA and b"hello" not in migrating.encode(DATA)
