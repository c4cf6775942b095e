"""libxml2's schema errors as a reporting officer reads them: one plain Norwegian sentence.

XPR_VAL quotes libxml2 (``Element '{http://www.npr.no/...}Episode', attribute 'omsorgsniva':
[facet 'enumeration'] The value '7' is not an element of the set {'1', '2', '3', '8'}.``).
:func:`explain` turns the common ones into "Attributtet omsorgsniva på Episode har verdien «7»,
som ikke er tillatt. Tillatte verdier: 1, 2, 3, 8." (the page keeps the original below it);
an error it does not know gives ``None``. :func:`mask_fodselsnummer` hides a fødselsnummer a
message quotes (CONTRACT.md, "Personal data in answers"): its first six digits and ``*****``.
"""

from __future__ import annotations

import re

FNR_ATTRIBUTES = ("fid",)
"""Attributes that hold a fødselsnummer (or D/H number): never shown in full."""

_ELEMENT = r"Element '(?:\{[^}]*\})?(?P<element>[^']+)'"
_ATTRIBUTE = r"(?:, attribute '(?P<attribute>[^']+)')?"
_HEAD = re.compile(_ELEMENT + _ATTRIBUTE + r": (?P<rest>.*)$", re.S)
_FNR_MESSAGE = re.compile(r"attribute '(?:" + "|".join(FNR_ATTRIBUTES) + r")'")
_QUOTED = re.compile(r"(The value '|: ')([^']*)(')")  # the submitted value libxml2 quotes
_ELEVEN_DIGITS = re.compile(r"(?<!\d)(\d{6})\d{5}(?!\d)")

_TYPES = {  # XSD type (local name) -> what a value of it looks like
    "date": "en dato (ÅÅÅÅ-MM-DD, f.eks. 2026-01-31)",
    "dato": "en dato (ÅÅÅÅ-MM-DD, f.eks. 2026-01-31)",
    "dateTime": "et tidspunkt (ÅÅÅÅ-MM-DDTtt:mm:ss, f.eks. 2026-01-31T14:30:00)",
    "datoTid": "et tidspunkt (ÅÅÅÅ-MM-DDTtt:mm:ss, f.eks. 2026-01-31T14:30:00)",
    "integer": "et heltall",
    "int": "et heltall",
    "positiveInteger": "et positivt heltall",
    "nonNegativeInteger": "et heltall som ikke er negativt",
    "decimal": "et tall",
    "boolean": "true eller false",
    "gYear": "et årstall (ÅÅÅÅ)",
}


def mask_fodselsnummer(text: str) -> str:
    """``text`` with every 11-digit number shown as its first six digits and ``*****``; in
    a message about a fødselsnummer attribute, every quoted value of 6 or more characters
    (an invalid number may have any length)."""
    if _FNR_MESSAGE.search(text):
        text = _QUOTED.sub(lambda m: f"{m[1]}{m[2][:6]}*****{m[3]}", text)
    return _ELEVEN_DIGITS.sub(r"\1*****", text)


def shown_value(attribute: str | None, value: str) -> str:
    """A submitted value as a report may show it: a fødselsnummer attribute masked."""
    if attribute in FNR_ATTRIBUTES:
        return value if value.endswith("*****") else value[:6] + "*****"
    return mask_fodselsnummer(value)


def _pattern_text(pattern: str) -> str:
    """A few common patterns in words; anything else as the pattern itself."""
    digits = re.fullmatch(r"\[0-9\]\{(\d+)\}|\\d\{(\d+)\}", pattern)
    if digits:
        return f"nøyaktig {digits.group(1) or digits.group(2)} sifre"
    ranged = re.fullmatch(r"\[0-9\]\{(\d+),(\d+)\}|\\d\{(\d+),(\d+)\}", pattern)
    if ranged:
        low, high = [g for g in ranged.groups() if g]
        return f"{low} til {high} sifre"
    return f"mønsteret {pattern}"


def _where(element: str, attribute: str | None) -> str:
    return f"Attributtet {attribute} på {element}" if attribute else f"Elementet {element}"


def explain(message: str) -> str | None:
    """The Norwegian sentence for one libxml2 schema error; ``None`` for one it does not know.

    The sentence names the element and attribute, the value (masked where it is a
    fødselsnummer) and what is allowed.
    """
    start = message.find("Element '")
    head = _HEAD.match(message[start:].strip()) if start >= 0 else None
    if head is None:
        return None
    element, attribute, rest = head["element"], head["attribute"], head["rest"].strip()
    where = _where(element, attribute)

    def value(raw: str) -> str:
        return "«" + shown_value(attribute, raw) + "»"

    if m := re.match(r"\[facet 'enumeration'\] The value '(.*)' is not an element of the set "
                     r"\{(.*)\}\.?$", rest, re.S):  # fmt: skip
        allowed = ", ".join(re.findall(r"'([^']*)'", m[2]))
        return (
            f"{where} har verdien {value(m[1])}, som ikke er tillatt. Tillatte verdier: {allowed}."
        )
    if m := re.match(r"\[facet 'pattern'\] The value '(.*)' is not accepted by the pattern "
                     r"'(.*)'\.?$", rest, re.S):  # fmt: skip
        return (
            f"{where} har verdien {value(m[1])}, som har feil form: må være {_pattern_text(m[2])}."
        )
    if m := re.match(r"\[facet '(minLength|maxLength|length)'\] The value '(.*)' has a length of "
                     r"'(\d+)'; this (?:underruns|exceeds|differs from) the allowed "
                     r"(?:minimum |maximum )?length of '(\d+)'\.?$", rest, re.S):  # fmt: skip
        bound = {"minLength": "minst", "maxLength": "høyst", "length": "nøyaktig"}[m[1]]
        return (
            f"{where} har verdien {value(m[2])}, som er {m[3]} tegn lang; "
            f"den må være {bound} {m[4]} tegn."
        )
    if m := re.match(r"\[facet '(maxInclusive|minInclusive|maxExclusive|minExclusive)'\] The value "
                     r"'(.*)' is (?:greater|less) than (?:or equal to )?the (?:maximum|minimum) "
                     r"value allowed \('(.*)'\)\.?$", rest, re.S):  # fmt: skip
        bound = {
            "maxInclusive": "høyst",
            "minInclusive": "minst",
            "maxExclusive": "mindre enn",
            "minExclusive": "større enn",
        }[m[1]]
        return f"{where} har verdien {value(m[2])}, som er utenfor det tillatte: {bound} {m[3]}."
    if m := re.match(r"'(.*)' is not a valid value of the (?:atomic|local atomic|list|union) "
                     r"type '(?:\{[^}]*\})?(?:xs:)?([^']*)'\.?$", rest, re.S):  # fmt: skip
        kind = _TYPES.get(m[2], f"en gyldig verdi av typen {m[2]}")
        return f"{where} har verdien {value(m[1])}, som ikke er gyldig: den må være {kind}."
    if m := re.match(r"The attribute '(.*)' is not allowed\.?$", rest):
        return f"Attributtet {m[1]} er ikke tillatt på {element}. Fjern det."
    if m := re.match(r"The attribute '(.*)' is required but missing\.?$", rest):
        return f"{element} mangler det påkrevde attributtet {m[1]}."
    if m := re.match(r"This element is not expected\.(?: Expected is (?:one of )?\( ?(.*?) ?\)\.)?",
                     rest, re.S):  # fmt: skip
        expected = _names(m[1]) if m[1] else ""
        tail = f" Her forventes: {expected}." if expected else ""
        return f"Elementet {element} er ikke tillatt her.{tail}"
    if m := re.match(r"Missing child element\(s\)\. Expected is (?:one of )?\( ?(.*?) ?\)\.?$",
                     rest, re.S):  # fmt: skip
        return f"{element} mangler et påkrevd underelement: {_names(m[1])}."
    if m := re.match(r"Character content other than whitespace is not allowed", rest):
        return f"{element} skal ikke inneholde tekst, bare underelementer og attributter."
    return None


def _names(listing: str) -> str:
    """``{ns}A, {ns}B`` as ``A, B``."""
    return ", ".join(re.sub(r"^\{[^}]*\}", "", n.strip()) for n in listing.split(",") if n.strip())
