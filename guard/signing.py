"""Ed25519 keys and detached signatures for manifests and audit checkpoints.

A hash chain or a manifest proves nothing against someone who can rewrite the whole file:
they recompute every hash. A signature made with a key the agent cannot read is what makes
the record trustworthy, so the private key must live outside everything an agent can touch.
:func:`check_key_outside` enforces that for the roots the caller names, and the loaders
refuse a private key that other users can read, as ``ssh`` does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from guard.exceptions import ConfigError, IntegrityError

PrivateKey = Ed25519PrivateKey
PublicKey = Ed25519PublicKey

StrPath = str | os.PathLike[str]


def _real(path: StrPath) -> Path:
    # resolve(strict=False) also resolves the existing parents of a file not yet written, so a
    # symlinked directory cannot smuggle the key into a protected root.
    return Path(os.fspath(path)).expanduser().resolve(strict=False)


def check_key_outside(private_path: StrPath, roots: Iterable[StrPath]) -> None:
    """Refuse a private key path that lies inside any protected root.

    Args:
        private_path: Where the private key is (or will be) stored.
        roots: Directories an agent can reach (model storage, sandboxes, the guard's world).

    Raises:
        ConfigError: The key is inside one of ``roots`` (after resolving symlinks).
    """
    key = _real(private_path)
    for root in roots:
        real_root = _real(root)
        if key == real_root or key.is_relative_to(real_root):
            raise ConfigError(
                f"private key {key} is inside protected root {real_root}: an agent that can "
                "read it can forge signatures; keep the key outside every protected root"
            )


def generate_keypair(
    private_path: StrPath,
    public_path: StrPath,
    *,
    protected_roots: Iterable[StrPath] = (),
) -> tuple[PrivateKey, PublicKey]:
    """Create an Ed25519 key pair and write it as PEM files.

    The private key is PKCS#8 PEM, created with mode 0600 and never over an existing file; the
    public key is SubjectPublicKeyInfo PEM, mode 0644.

    Args:
        private_path: Where to write the private key; must not exist yet.
        public_path: Where to write the public key (replaced if it exists).
        protected_roots: Roots the private key must stay out of (see :func:`check_key_outside`).

    Returns:
        The new private and public keys.

    Raises:
        ConfigError: The private key would land in a protected root, or already exists.
    """
    check_key_outside(private_path, protected_roots)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    try:
        # O_EXCL: overwriting a key would silently orphan every signature made with it.
        fd = os.open(
            os.fspath(private_path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
    except FileExistsError:
        raise ConfigError(f"private key {os.fspath(private_path)} already exists") from None
    try:
        # The umask cannot widen 0600, but fchmod makes the mode explicit whatever it is.
        os.fchmod(fd, 0o600)
        os.write(fd, private_pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    Path(public_path).write_bytes(public_pem)
    os.chmod(public_path, 0o644)
    return key, key.public_key()


def load_private_key(path: StrPath, *, protected_roots: Iterable[StrPath] = ()) -> PrivateKey:
    """Read an Ed25519 private key from an unencrypted PEM file.

    Args:
        path: The PEM file.
        protected_roots: Roots the key must not be inside (see :func:`check_key_outside`).

    Returns:
        The private key.

    Raises:
        ConfigError: Missing or unreadable file, not an Ed25519 private key, readable by group
            or others, or inside a protected root.
    """
    check_key_outside(path, protected_roots)
    try:
        mode = os.stat(path).st_mode
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {os.fspath(path)}: {exc}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"private key {os.fspath(path)} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{os.fspath(path)} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{os.fspath(path)} is not an Ed25519 private key")
    return key


def load_public_key(path: StrPath) -> PublicKey:
    """Read an Ed25519 public key from a PEM file.

    Args:
        path: The PEM file.

    Returns:
        The public key.

    Raises:
        ConfigError: Missing file, or not an Ed25519 public key.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read public key {os.fspath(path)}: {exc}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{os.fspath(path)} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{os.fspath(path)} is not an Ed25519 public key")
    return key


def sign(data: bytes, key: PrivateKey) -> bytes:
    """Sign bytes.

    Args:
        data: The exact bytes to sign.
        key: The private key.

    Returns:
        The 64-byte Ed25519 signature.
    """
    return key.sign(data)


def verify_signature(data: bytes, sig: bytes, pubkey: PublicKey) -> None:
    """Check a signature, raising when it does not verify.

    Args:
        data: The bytes that were signed.
        sig: The signature.
        pubkey: The public key of the expected signer.

    Raises:
        IntegrityError: The signature is not a valid signature of ``data`` by ``pubkey``.
    """
    try:
        pubkey.verify(sig, data)
    except InvalidSignature:
        raise IntegrityError(
            "signature does not verify: the data or the signature was altered"
        ) from None


def key_id(key: PrivateKey | PublicKey) -> str:
    """A short fingerprint of a key: the first 16 hex digits of SHA-256 of its raw public bytes.

    Args:
        key: A private or public key (a private key is fingerprinted by its public half).

    Returns:
        16 hex digits, stable for the key pair.
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_signature(sig: bytes) -> str:
    """Base64 text form of a signature, for JSON records and ``.sig`` files."""
    return base64.b64encode(sig).decode("ascii")


def decode_signature(text: str | bytes) -> bytes:
    """Inverse of :func:`encode_signature`.

    Args:
        text: Base64 text (surrounding whitespace is ignored).

    Returns:
        The raw signature bytes.

    Raises:
        IntegrityError: The text is not valid base64.
    """
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise IntegrityError("signature is not valid base64") from exc


__all__ = [
    "PrivateKey",
    "PublicKey",
    "check_key_outside",
    "decode_signature",
    "encode_signature",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign",
    "verify_signature",
]
