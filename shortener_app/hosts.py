"""A host name as a browser reads it: the WHATWG URL standard's domain-to-ASCII (UTS #46).

A browser maps a host before it looks it up: case folded, fullwidth letters and digits to ASCII
(U+FF53 is `s`), the ideographic and fullwidth full stops (U+3002, U+FF0E, U+FF61) to `.`, and a
label that is still not ASCII to punycode (`apple` spelt with a Cyrillic a, U+0430, is
`xn--pple-43d`). Two spellings that map to the same ASCII host are the same host; the ASCII form is
the one the browser opens, and the one a reader cannot mistake for another.
"""

import idna


class InvalidHost(ValueError):
    """A host no browser would open: a label that is not valid IDNA, or characters UTS #46 disallows."""


def to_ascii(host: str) -> str:
    """`host` as a browser opens it, in lower case ASCII; unchanged but for case when it is ASCII already."""
    if host.isascii():
        return host.lower()
    try:
        # Non-transitional processing and no STD3 rules: the WHATWG URL standard's settings.
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        labels = [label if label.isascii() else idna.alabel(label).decode("ascii") for label in mapped.split(".")]
    except idna.IDNAError as error:
        raise InvalidHost(f"the host is not a valid international domain name ({error})") from None
    return ".".join(labels)
