"""Every reason intake can give a unit, with a stable code and a sentence it can act on.

Codes are part of the contract with the reporting units (they appear in XPR_VAL and in
``npr intake --json``); the text may improve, the codes never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Outcome of one received file."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    TEST = "test"
    FAILED = "failed"  # our error, not the unit's: not final, the next intake retries the file


@dataclass(frozen=True)
class Reason:
    """Why a file got its status; ``severity`` error rejects, warning and info do not."""

    code: str
    message: str
    severity: str = "error"
    line: int | None = None
    element: str | None = None

    def as_json(self) -> dict[str, object]:
        """The shape of ``npr intake --json`` reasons (line/element only where known)."""
        doc: dict[str, object] = {"code": self.code, "message": self.message}
        if self.severity != "error":
            doc["severity"] = self.severity
        if self.line is not None:
            doc["line"] = self.line
        if self.element:
            doc["element"] = self.element
        return doc


# code -> what it means, for docs/intake.md and the reports' legend.
CODES: dict[str, str] = {
    "empty_file": "The file is empty.",
    "too_large": "The file is larger than the configured limit.",
    "not_xml": "The file is not well-formed XML.",
    "truncated": "The file ends before the XML document does (an interrupted transfer).",
    "encoding_error": "The bytes do not match the declared character encoding.",
    "unsupported_encoding": "Only UTF-8 and ISO-8859-1 are accepted.",
    "doctype_forbidden": "A DOCTYPE (DTD, entity declarations) is not allowed in submissions.",
    "entity_forbidden": "Entity references other than the five XML built-ins are not allowed.",
    "not_msghead": "The root is not a KITH MsgHead v1.2 header.",
    "header_incomplete": "A required header field (Type, Sender, Receiver, Content) is missing.",
    "unknown_message_type": "MsgInfo/Type is not a message type NPR receives (code list 8279).",
    "unknown_payload": "The payload is not an NPR ord/ide message of a version we know.",
    "payload_mismatch": "The payload's message type differs from MsgInfo/Type.",
    "wrong_version": "The message version is not the one valid for the data year.",
    "unknown_receiver": "The receiver is neither NPR production nor the validation service.",
    "unknown_sender": "The sender's idents match no unit in the registry.",
    "inactive_sender": "The sending unit is not active for the data period.",
    "sender_mismatch": "The sender's HER, organisation number and RESH id name different units.",
    "institution_mismatch": "Institusjon/@institusjonID is not the sender's organisation number.",
    "type_not_reported": "The unit is not registered to report this message type.",
    "bad_period": "fraDatoPeriode/tilDatoPeriode/uttakDato do not describe a valid period.",
    "lopenr_reused": "The same lopenr was already used by another file of this unit and year.",
    "schema_error": "The payload does not validate against the message schema.",
    "header_schema_error": "The MsgHead header does not validate against MsgHead v1.2 (KITH).",
    "value_out_of_range": "A value is valid XML Schema but outside what the register can store.",
    "lopenr_jump": "The lopenr is over 1,000 above the current one of this unit, type and year.",
    "internal_error": "The register failed handling the file; not final, the next intake retries.",
    "validation_service": "Sent to the validation service (HER 121017): checked, never produced.",
    "test_orgnr": "Vendor test data (organisation number 777777777): checked, never produced.",
    "duplicate": "The same bytes were received before; nothing changed.",
    "older_than_current": "A newer lopenr of this unit, type and year is already current.",
    "ide_mismatch": "The identity message does not cover exactly the patients of its ord.",
    "no_technical_contact": (
        "No Kontaktperson of type 1 (technical contact) with a valid e-mail address: the answers "
        "go by EDI only, no e-mail."
    ),
    "local_validation": "Checked locally by npr validate: never received by the register.",
    "wrong_route": "The unit reports by the other route (monthly or daily) for this data year.",
    "duplicate_new": "An N event for a key that already exists; the record was not changed.",
    "unknown_key": "An M, T or C event for a key that does not exist; nothing was changed.",
    "after_cancel": "An M, T or C event for a cancelled record; nothing was changed.",
    "trial_period": (
        "Received before the type's ordinary reporting begins (its calendar): answered in full "
        "(XPR_VAL, XPR_ERR), recorded as a test file, never produced."
    ),
    "report_findings": (
        "A content check of the report failed (see XPR_ERR); the report is stored: send a "
        "corrected one with a newer lopenr."
    ),
}
# Findings on a daily file's events (XPR_ERR): never reject the file, never change the state.
EVENT_FINDINGS = ("duplicate_new", "unknown_key", "after_cancel")


def reason(code: str, detail: str = "", **kwargs: object) -> Reason:
    """A reason with the standard text, plus the specific detail for this file."""
    text = CODES[code] + (f" {detail}" if detail else "")
    return Reason(code=code, message=text, **kwargs)  # type: ignore[arg-type]
