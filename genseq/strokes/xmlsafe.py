"""Parsing untrusted XML (IAM stroke files, InkML) with defusedxml: entity
expansion ("billion laughs"), external entities and DTD tricks are refused."""
from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from .clean import Skip


def parse_xml(data: bytes) -> Element:
    """The root element of `data`; raises Skip with the reason for refused or malformed XML."""
    try:
        return SafeET.fromstring(data)
    except defusedxml.DefusedXmlException as err:
        raise Skip(f"xml refused ({type(err).__name__})") from None
    except (ParseError, LookupError, ValueError, UnicodeError):
        # ValueError, LookupError, UnicodeError: an encoding the parser cannot read
        # (encoding="bogus", "shift_jis", "base64"), as malformed as a broken tag.
        raise Skip("malformed xml") from None
