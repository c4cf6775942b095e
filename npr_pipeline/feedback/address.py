"""Whether a technical contact's e-mail address can be used to send the answers.

Deliberately plain: one ``@``, a non-empty local part, a domain with a dot, no spaces or
angle brackets, at most 254 characters (RFC 5321). An address that passes may still bounce;
one that fails would certainly not arrive, and the unit is told so in its answer
(``no_technical_contact``) rather than losing the e-mail silently.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[A-Za-z]{2,}")
MAX_ADDRESS = 254


def valid_address(value: str | None) -> bool:
    """True when ``value`` looks like one deliverable e-mail address."""
    if not value or len(value) > MAX_ADDRESS:
        return False
    return _ADDRESS.fullmatch(value) is not None
