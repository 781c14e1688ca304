"""Ed25519 key files, signatures, and keeping the private key out of agents' reach."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    check_key_outside,
    decode_signature,
    encode_signature,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    sign,
    verify_signature,
)


def test_generated_keys_round_trip_through_pem_files(tmp_path: Path) -> None:
    """A written key pair loads back and signs what its public half verifies."""
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    private = load_private_key(tmp_path / "k.pem")
    public = load_public_key(tmp_path / "k.pub")
    sig = sign(b"manifest bytes", private)
    verify_signature(b"manifest bytes", sig, public)
    assert (tmp_path / "k.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "k.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert key_id(private) == key_id(public)


def test_private_key_file_is_owner_only(tmp_path: Path) -> None:
    """The private key is created with mode 0600 whatever the umask."""
    old = os.umask(0)
    try:
        generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_existing_private_key_is_never_overwritten(tmp_path: Path) -> None:
    """Generating over an existing key refuses, so old signatures stay verifiable."""
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    before = (tmp_path / "k.pem").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_keypair(tmp_path / "k.pem", tmp_path / "k2.pub")
    assert (tmp_path / "k.pem").read_bytes() == before


def test_altered_data_or_signature_raises_integrity_error(tmp_path: Path) -> None:
    """A changed byte in the data or the signature fails verification."""
    private, public = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    sig = sign(b"payload", private)
    with pytest.raises(IntegrityError):
        verify_signature(b"payloaD", sig, public)
    with pytest.raises(IntegrityError):
        verify_signature(b"payload", bytes([sig[0] ^ 1]) + sig[1:], public)


def test_signature_from_another_key_is_rejected(tmp_path: Path) -> None:
    """A valid signature by a different key does not verify."""
    mine, _ = generate_keypair(tmp_path / "a.pem", tmp_path / "a.pub")
    _, theirs = generate_keypair(tmp_path / "b.pem", tmp_path / "b.pub")
    with pytest.raises(IntegrityError):
        verify_signature(b"x", sign(b"x", mine), theirs)


def test_key_inside_protected_root_is_refused(tmp_path: Path) -> None:
    """Writing or loading a private key inside a protected root raises ConfigError."""
    storage = tmp_path / "storage"
    storage.mkdir()
    with pytest.raises(ConfigError, match="inside protected root"):
        generate_keypair(storage / "k.pem", tmp_path / "k.pub", protected_roots=[storage])
    assert not (storage / "k.pem").exists()
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub", protected_roots=[storage])
    load_private_key(tmp_path / "k.pem", protected_roots=[storage])
    with pytest.raises(ConfigError):
        check_key_outside(storage / "deep/inside/k.pem", [tmp_path / "other", storage])


def test_symlinked_directory_cannot_smuggle_key_into_root(tmp_path: Path) -> None:
    """A path that reaches a protected root through a symlink is still refused."""
    storage = tmp_path / "storage"
    storage.mkdir()
    (tmp_path / "innocent").symlink_to(storage)
    with pytest.raises(ConfigError):
        check_key_outside(tmp_path / "innocent/k.pem", [storage])


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    """Loading a private key with group or other permission bits raises ConfigError."""
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    os.chmod(tmp_path / "k.pem", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(tmp_path / "k.pem")


def test_non_key_files_raise_config_error(tmp_path: Path) -> None:
    """Missing files, garbage and a public key given as private all raise ConfigError."""
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    os.chmod(garbage, 0o600)
    with pytest.raises(ConfigError):
        load_private_key(tmp_path / "missing.pem")
    with pytest.raises(ConfigError):
        load_private_key(garbage)
    with pytest.raises(ConfigError):
        load_public_key(garbage)
    with pytest.raises(ConfigError):
        load_public_key(tmp_path / "k.pem")


def test_signature_text_form_round_trips(tmp_path: Path) -> None:
    """Base64 text of a signature decodes to the same bytes; junk raises IntegrityError."""
    private, _ = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    sig = sign(b"x", private)
    assert decode_signature(encode_signature(sig) + "\n") == sig
    with pytest.raises(IntegrityError):
        decode_signature("not base64!")
