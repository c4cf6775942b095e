"""The native probe (``npr_pipeline.intake.native.probe``) and the route it opens: a file the
probe reads as an ordinary file of a monthly type skips ``daily_header`` and the prolog check,
so the probe must answer only where those two lxml reads would have let the file through
(``npr_pipeline.intake.daily.untyped_by_probe`` gives the argument).

Here: its answers on ordinary, hostile and odd files, the lxml behaviour the argument leans
on, and property tests holding the probe to lxml's own reads (lxml carries a newer libxml2
than the system's, which the probe uses) on generated documents and on a real file mutated
byte by byte. The hostile corpus through both routes: ``test_intake_hostile.py``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from npr_pipeline.intake import native
from npr_pipeline.intake.daily import daily_header, probe_reads_as_lxml, untyped_by_probe
from npr_pipeline.intake.gate import typed_types
from npr_pipeline.intake.safe_xml import check_prolog, hardened_iterparse
from npr_pipeline.intake.validation import HEAD_BYTES, precheck
from npr_pipeline.schemas import MSGHEAD_NS
from tests.soak import examples

MH = f"{{{MSGHEAD_NS}}}"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT = f'<MsgHead xmlns="{MSGHEAD_NS}">'
GOLDEN = Path(__file__).parent / "reader_golden" / "y2026" / "5429473_2026-01_ide.xml.gz"
TYPED = sorted(typed_types())


def _doc(
    info: str = '<Type V="NPR_ORD" DN="NPR-ord"/><MIGversion>v1.2</MIGversion>',
    before: str = "",
    prolog: str = DECL,
    root: str = ROOT,
    after: str = "<Document/></MsgHead>\n",
) -> str:
    """A MsgHead whose MsgInfo holds ``info``, with ``before`` between the root and MsgInfo."""
    return f"{prolog}{root}{before}<MsgInfo>{info}</MsgInfo>{after}"


ANSWERED = {
    "ordinary": (_doc(), "NPR_ORD"),
    "no declaration": (_doc(prolog=""), "NPR_ORD"),
    "utf-8 byte-order mark": ("\ufeff" + _doc(), "NPR_ORD"),
    "Type after another child": (_doc('<MIGversion/><Type V="NPR_IDE"/>'), "NPR_IDE"),
    "the first of two Types": (_doc('<Type V="NPR_IDE"/><Type V="NPR_ORD"/>'), "NPR_IDE"),
    "no Type": (_doc("<MIGversion/>"), ""),
    "Type without V": (_doc('<Type DN="NPR-ord"/>'), ""),
    "V in a namespace": (_doc('<Type xmlns:o="urn:o" o:V="NPR_ORD"/>'), ""),
    "Type in another namespace": (_doc('<Type xmlns="urn:o" V="NPR_ORD"/>'), ""),
    "Type as a grandchild": (_doc('<Sender><Type V="NPR_ORD"/></Sender>'), ""),
    "character references in V": (_doc('<Type V="NPR&#95;&#x4F;RD"/>'), "NPR_ORD"),
    "predefined entities in V": (_doc('<Type V="a&amp;b&lt;c&#38;&quot;"/>'), 'a&b<c&"'),
    "whitespace in V": (_doc('<Type V="a&#9;b\tc\nd"/>'), "a\tb c d"),
    "comments, PIs, CDATA and text first": (
        _doc(
            prolog=DECL + "<!-- a comment --><?pi data?>\n",
            before="<!-- <MsgInfo> --><?pi x?><![CDATA[<MsgInfo>]]>text &amp; &#60;",
        ),
        "NPR_ORD",
    ),
    "MsgInfo below another element": (
        _doc(before="<Wrapper>", after="</Wrapper></MsgHead>"),
        "NPR_ORD",
    ),
    "a syntax error after MsgInfo": (_doc(after="<a></b></MsgHead>"), "NPR_ORD"),
    "truncated after MsgInfo": (_doc(after=""), "NPR_ORD"),
    "a prefixed MsgHead": (
        _doc().replace(ROOT, f'<mh:MsgHead xmlns:mh="{MSGHEAD_NS}" xmlns="{MSGHEAD_NS}">'),
        "NPR_ORD",
    ),
}

UNUSUAL = {
    "empty": "",
    "not XML": "reshID;orgnr\n4001031;974633574\n",
    "DOCTYPE with an internal subset": _doc(prolog=DECL + '<!DOCTYPE MsgHead [<!ENTITY a "b">]>'),
    "DOCTYPE with an external DTD": _doc(prolog=DECL + '<!DOCTYPE MsgHead SYSTEM "m.dtd">'),
    "bare DOCTYPE": _doc(prolog=DECL + "<!DOCTYPE MsgHead>"),
    "undeclared entity before MsgInfo": _doc(before="&xxe;"),
    "undeclared entity in V": _doc('<Type V="&xxe;"/>'),
    "another root": _doc(root=f'<Foo xmlns="{MSGHEAD_NS}">'),
    "MsgHead in another namespace": _doc(
        root='<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2004-11-21">'
    ),
    "MsgHead without a namespace": _doc(root="<MsgHead>"),
    "MsgInfo in another namespace": f'{DECL}{ROOT}<MsgInfo xmlns="urn:o"><Type V="X"/></MsgInfo>'
    "</MsgHead>",
    "MsgInfo in MsgInfo": _doc('<MsgInfo><Type V="NPR_KPP"/></MsgInfo><Type V="NPR_ORD"/>'),
    "no MsgInfo": f"{DECL}{ROOT}<Document/></MsgHead>\n",
    "truncated in MsgInfo": _doc()[: _doc().index("<MIGversion>")],
    "a syntax error before MsgInfo": _doc(before="<a></b>"),
    "an undeclared prefix before MsgInfo": _doc(before="<p:a/>"),
    "an undeclared prefix on V": _doc('<Type p:V="NPR_ORD" V="NPR_ORD"/>'),
    "a duplicate V": _doc('<Type V="NPR_ORD" V="NPR_IDE"/>'),
    "a warning: XML 1.1": _doc(prolog='<?xml version="1.1" encoding="UTF-8"?>\n'),
    "a warning: a relative default namespace": _doc(before='<a xmlns="relative"/>'),
    "CDATA before the root": _doc(prolog=DECL + "<![CDATA[x]]>"),
    "text before the root": _doc(prolog=DECL + "text"),
}


def _write(tmp_path: Path, data: bytes | str, name: str = "probe.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("case", sorted(ANSWERED))
def test_the_probe_reads_msginfos_type_as_lxml_does(case: str, tmp_path: Path) -> None:
    text, expected = ANSWERED[case]
    path = _write(tmp_path, text)
    assert native.probe(str(path)) == expected
    assert _lxml_type(path) == expected
    assert check_prolog(path) is None


@pytest.mark.parametrize("case", sorted(UNUSUAL))
def test_anything_unusual_gets_no_answer(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path, UNUSUAL[case])
    assert native.probe(str(path)) is None
    assert not untyped_by_probe(path)


def test_iso_8859_1_is_read_as_declared(tmp_path: Path) -> None:
    text = _doc('<Type V="NPR_ØRD Blåbær"/>', prolog='<?xml version="1.0" encoding="ISO-8859-1"?>')
    path = _write(tmp_path, text.encode("latin-1"))
    assert native.probe(str(path)) == "NPR_ØRD Blåbær" == _lxml_type(path)


@pytest.mark.parametrize("encoding", ["latin-1", "LATIN1", "iso8859-1", "utf-16", "ISO-8859-2"])
def test_an_encoding_for_iconv_takes_the_careful_route(encoding: str, tmp_path: Path) -> None:
    """lxml's libxml2 refuses ``latin-1``, the system's reads it: no answer stands for both."""
    prolog = f'<?xml version="1.0" encoding="{encoding}"?>'
    path = _write(tmp_path, _doc(prolog=prolog).encode(encoding.replace("LATIN1", "latin1")))
    assert not untyped_by_probe(path)


@pytest.mark.parametrize("encoding", ["UTF-8", "utf8", "ISO-8859-1", "iso-8859-1"])
def test_an_encoding_both_libxml2s_decode_themselves_is_probed(
    encoding: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, _doc(prolog=f"<?xml version='1.0' encoding='{encoding}'?>"))
    assert untyped_by_probe(path)


def test_bytes_that_are_not_utf_8_before_msginfo_get_no_answer(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(before="<a navn='Blåbær'/>").encode("latin-1"))
    assert native.probe(str(path)) is None


def test_a_byte_order_mark_against_the_declaration_goes_the_careful_way(tmp_path: Path) -> None:
    """Found by the soak: with a UTF-8 mark and ISO-8859-1 declared, the system's libxml2
    decodes by the declaration and lxml's by the mark, so U+FFFE before the root is three
    Latin-1 letters to the probe and an encoding error to the prolog check."""
    head = b'\xef\xbb\xbf<?xml version="1.0" encoding="ISO-8859-1"?>'
    body = f'<!--\xef\xbf\xbe--><MsgHead xmlns="{MSGHEAD_NS}"><MsgInfo><Type V="NPR_ORD"/>'
    path = _write(tmp_path, head + body.encode("latin-1") + b"</MsgInfo></MsgHead>")
    assert check_prolog(path) is not None
    assert not probe_reads_as_lxml(path.read_bytes()[:HEAD_BYTES])
    assert not untyped_by_probe(path)
    assert precheck(path) is not None


def test_a_missing_file_is_an_os_error_as_open_gives(tmp_path: Path) -> None:
    missing = tmp_path / "missing.xml"
    with pytest.raises(FileNotFoundError) as probed:
        native.probe(str(missing))
    with pytest.raises(FileNotFoundError) as opened:
        open(missing, "rb")  # noqa: SIM115 - the error daily_header's open raises
    assert str(probed.value) == str(opened.value)


def test_a_typed_type_goes_the_careful_way(tmp_path: Path) -> None:
    """The probe reads a daily or report type, but only daily_header decides its route."""
    for kind in TYPED:
        path = _write(tmp_path, _doc(f'<Type V="{kind}"/>'))
        assert native.probe(str(path)) == kind
        assert not untyped_by_probe(path)
    assert untyped_by_probe(_write(tmp_path, _doc()))


def test_typed_types_are_ascii_names() -> None:
    """The argument for encodings: a typed name's bytes read the same in UTF-8 and Latin-1."""
    assert TYPED and all(kind.isascii() and kind.strip() == kind for kind in TYPED)


def test_lxml_hands_over_the_root_before_a_later_error(tmp_path: Path) -> None:
    """What lets the probe stand for the prolog check: lxml's iterparse reads 32 kB at once,
    and reports the events it parsed before an error in them before raising the error."""
    path = _write(tmp_path, _doc(after="<a></b>" + "<c/>" * 100 + "</MsgHead>"))
    assert check_prolog(path) is None
    assert _lxml_type(path) == "NPR_ORD"
    with pytest.raises(etree.XMLSyntaxError):
        for _ in hardened_iterparse(path, ("end",)):
            pass


# -- property tests: the probe against lxml's reads ----------------------------------------
def _lxml_type(path: Path) -> str | None:
    """``V`` of the first Type child of the first MsgInfo lxml ends ("" without one), None
    if lxml raises first or finds none: what daily_header decides by."""
    try:
        with open(path, "rb") as handle:
            for _, info in hardened_iterparse(handle, ("end",), (f"{MH}MsgInfo",)):
                found = info.find(f"{MH}Type")
                return (found.get("V") if found is not None else None) or ""
    except etree.XMLSyntaxError:
        return None
    return None


def _holds_to_lxml(path: Path) -> str | None:
    """The probe's answer, after checking that where intake takes it, the lxml reads it
    stands for answer alike: the same type as lxml reads, daily_header None for an untyped
    one, and precheck passing."""
    found = native.probe(str(path))
    if found is not None and probe_reads_as_lxml(path.read_bytes()[:HEAD_BYTES]):
        assert _lxml_type(path) == found
        assert (daily_header(path) is None) == (found not in typed_types())
    if untyped_by_probe(path):
        assert daily_header(path) is None
        assert precheck(path) is None  # what read_submission's ``prechecked`` stands for
    return found


_PIECES = [
    "",
    " ",
    "\n",
    "text",
    "<!-- c -->",
    "<!-- -- -->",
    "<?pi x?>",
    "<?xml x?>",
    "<![CDATA[<MsgInfo>]]>",
    "<a/>",
    "<a>",
    "</a>",
    "<a></b>",
    "&amp;",
    "&#60;",
    "&#0;",
    "&xxe;",
    "&",
    "<",
    "<p:a/>",
    '<a xmlns:r="relative"/>',
    '<a b="1" b="2"/>',
    f'<MsgInfo xmlns="{MSGHEAD_NS}"><Type V="NPR_KPP"/></MsgInfo>',
    '<MsgInfo xmlns="urn:o"/>',
    "<MsgInfo>",
    "</MsgInfo>",
    "<Type V='NPR_IDE'/>",
    "\x01",
    "\ufffe",
    "ø",
    "]]>",
]
_PROLOGS = [
    "",
    DECL,
    '<?xml version="1.0"?>',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
    '<?xml version="1.1"?>',
    '<?xml version="2.0"?>',
    '<?xml version="1.0" encoding="ISO-8859-1"?>',
    '<?xml version="1.0" encoding="utf8"?>',
    '<?xml version="1.0" encoding="iso8859-1"?>',
    '<?xml version="1.0" encoding="latin-1"?>',
    '<?xml version="1.0" encoding="LATIN1"?>',
    '<?xml version="1.0" encoding="ISO-8859-2"?>',
    '<?xml version="1.0" encoding="UTF-16"?>',
    '<?xml version="1.0" encoding="bogus"?>',
    "<?xml encoding='UTF-8'?>",
    " <?xml version='1.0'?>",
    "<!DOCTYPE MsgHead>",
    '<!DOCTYPE MsgHead [<!ENTITY a "b">]>',
    "<!-- c -->",
    "<?pi?>",
]
_ROOTS = [
    ROOT,
    f'<mh:MsgHead xmlns:mh="{MSGHEAD_NS}">',
    f'<MsgHead xmlns="{MSGHEAD_NS}" xmlns:r="relative">',
    f'<MsgHead xmlns="{MSGHEAD_NS}" a="1" a="2">',
    "<MsgHead>",
    '<MsgHead xmlns="urn:o">',
    f'<Foo xmlns="{MSGHEAD_NS}">',
]
_VALUES = [*TYPED, "NPR_ORD", "NPR_IDE", "", "NPR&#95;ORD", "a&amp;b", "&xxe;", "ø", "a\tb"]


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    """A MsgHead made of pieces that are ordinary, odd or hostile, in an encoding."""
    pieces = st.lists(st.sampled_from(_PIECES), max_size=3).map("".join)
    value = draw(st.sampled_from(_VALUES))
    info = draw(
        st.sampled_from(
            [
                f'<Type V="{value}"/>',
                f'<MIGversion/><Type V="{value}"/>',
                f"<Type DN='{value}'/>",
                f'<Sender><Type V="{value}"/></Sender>',
                "",
            ]
        )
    )
    text = _doc(
        draw(pieces) + info + draw(pieces),
        before=draw(pieces),
        prolog=draw(st.sampled_from(_PROLOGS)) + draw(pieces),
        root=draw(st.sampled_from(_ROOTS)),
        after=draw(pieces) + draw(st.sampled_from(["</MsgHead>", ""])),
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, "xmlcharrefreplace")


@pytest.mark.soak
@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=_documents())
def test_the_probe_answers_only_as_lxml_reads(tmp_path: Path, data: bytes) -> None:
    _holds_to_lxml(_write(tmp_path, data))


_BASE = gzip.decompress(GOLDEN.read_bytes())
_END_OF_INFO = _BASE.index(b"</MsgInfo>") + len(b"</MsgInfo>")
_BYTES = list(b"<>/&;#x:=\"' \t\n![]-?\x00\xff\xc3aMV") + [None]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """The real file with up to three bytes inserted, replaced or deleted up to just past
    MsgInfo (where the probe reads)."""
    data = bytearray(_BASE)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, _END_OF_INFO + 20))
        new = draw(st.sampled_from(_BYTES))
        how = draw(st.sampled_from(["insert", "replace"]))
        if new is None:
            del data[at]
        elif how == "insert":
            data.insert(at, new)
        else:
            data[at] = new
    return bytes(data)


@pytest.mark.soak
@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=_mutated())
def test_a_mutated_file_gets_an_answer_only_as_lxml_reads_it(tmp_path: Path, data: bytes) -> None:
    _holds_to_lxml(_write(tmp_path, data))


def test_the_unmutated_file_is_answered(tmp_path: Path) -> None:
    assert _holds_to_lxml(_write(tmp_path, _BASE)) == "NPR_IDE"
