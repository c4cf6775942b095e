"""The national message header (KITH MsgHead v1.2) that wraps every NPR submission.

Writers use :func:`open_envelope` / :func:`close_envelope` around a streamed payload; intake reads
the same names back. Code lists: 8279 message types, 9051 ident types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import quoteattr

from npr_pipeline.schemas import MSGHEAD_NS

MIG_VERSION = "v1.2 2006-05-24"
OID_IDENT_TYPE = "2.16.578.1.12.4.1.1.9051"
NPR_NAME = "Folkehelseinstituttet, Norsk pasientregister"
PRODUCTION_HER = "94378"
VALIDATION_HER = "121017"
TEST_ORGNR = "777777777"
MESSAGE_TYPE_TEXT = {"NPR_ORD": "NPR-melding", "NPR_IDE": "NPR-ident"}


@dataclass(frozen=True)
class Party:
    """A sender or receiver organisation with its idents (HER, ENH = orgnr, RSH = RESH id)."""

    name: str
    her: str | None = None
    orgnr: str | None = None
    resh: str | None = None

    def idents(self) -> list[tuple[str, str]]:
        """(Id, TypeId) pairs in the order MsgHead examples use."""
        pairs = [("HER", self.her), ("ENH", self.orgnr), ("RSH", self.resh)]
        return [(value, kind) for kind, value in pairs if value]


NPR_PRODUCTION = Party(NPR_NAME, her=PRODUCTION_HER, orgnr="983744516")
NPR_VALIDATION = Party(NPR_NAME + ", valideringstjeneste", her=VALIDATION_HER, orgnr="983744516")


def _organisation(party: Party) -> str:
    idents = "".join(
        f'<Ident><Id>{value}</Id><TypeId V="{kind}" S="{OID_IDENT_TYPE}"/></Ident>'
        for value, kind in party.idents()
    )
    return (
        f"<Organisation><OrganisationName>{_text(party.name)}</OrganisationName>"
        f"{idents}</Organisation>"
    )


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def open_envelope(
    msg_type: str,
    msg_id: str,
    generated: datetime,
    sender: Party,
    receiver: Party,
    display_name: str | None = None,
) -> str:
    """Everything of the header up to the opening of ``Content``; the payload follows.

    ``display_name`` is the type's DN; the monthly types have theirs here, the types described
    as data (``npr_pipeline/messages/``) bring their own from their mapping.
    """
    name = display_name or MESSAGE_TYPE_TEXT[msg_type]
    return (
        f'<MsgHead xmlns="{MSGHEAD_NS}">'
        f"<MsgInfo>"
        f'<Type V="{msg_type}" DN={quoteattr(name)}/>'
        f"<MIGversion>{MIG_VERSION}</MIGversion>"
        f"<GenDate>{generated.isoformat(timespec='seconds')}</GenDate>"
        f"<MsgId>{msg_id}</MsgId>"
        f"<Sender>{_organisation(sender)}</Sender>"
        f"<Receiver>{_organisation(receiver)}</Receiver>"
        f"</MsgInfo>"
        f'<Document><RefDoc><MsgType V="XML" DN="XML-instans"/><Content>\n'
    )


def close_envelope() -> str:
    """The end of the header after the payload."""
    return "\n</Content></RefDoc></Document></MsgHead>\n"
