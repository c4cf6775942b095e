"""Per-project person keys: HMAC-SHA256 of the fødselsnummer and the project id.

A keyed hash, not a plain one: fødselsnummer are few enough (about 10^8 plausible numbers) that
an unkeyed hash is reversed by trying them all. The project id is part of the message, so one
person has one key within a project and unrelated keys across projects (two projects cannot
link their extracts). The key material never enters the repository: it comes from the
environment (``NPR_PSEUDONYM_KEY``) or from ``HOME/keys/pseudonym.key``, which must be readable
by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Home

ENV_KEY = "NPR_PSEUDONYM_KEY"
MIN_KEY_CHARS = 32
KEY_HEX_CHARS = 32  # 128 bits: no collisions in a population of millions


class PseudonymKeyError(Exception):
    """The key material is missing, too short or not protected."""


def key_file(home: Home) -> Path:
    """Where the key lives when it does not come from the environment."""
    return home.root / "keys" / "pseudonym.key"


def load_key(home: Home) -> bytes:
    """The key material: the environment wins, else the owner-only key file under HOME."""
    text = os.environ.get(ENV_KEY)
    source = f"${ENV_KEY}"
    if not text:
        path = key_file(home)
        if not path.exists():
            raise PseudonymKeyError(
                f"no pseudonym key: set {ENV_KEY} or create {path} (mode 0600); "
                "never put it in the repository"
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PseudonymKeyError(
                f"{path} is readable by others (mode {mode:04o}); chmod 600 it before use"
            )
        text, source = path.read_text(encoding="utf-8").strip(), str(path)
    if len(text) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"pseudonym key from {source}: under {MIN_KEY_CHARS} characters")
    return text.encode("utf-8")


def pseudonym(key: bytes, project: str, fnr: str) -> str:
    """The person key of ``fnr`` in ``project`` (hex; a separator keeps the parts apart)."""
    message = f"{project}\x1f{fnr}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]


def key_id(key: bytes) -> str:
    """A fingerprint that says which key was used without revealing it (for the manifest)."""
    return hmac.new(key, b"npr-pseudonym-key-id", hashlib.sha256).hexdigest()[:12]


def ensure_demo_key(home: Home) -> Path:
    """Create a random owner-only key file for a demo home (kept if it exists)."""
    path = key_file(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        write_text(path, os.urandom(32).hex() + "\n")  # mkstemp: created 0600
        path.chmod(0o600)
    return path
