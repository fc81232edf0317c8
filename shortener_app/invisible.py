"""Characters that render as nothing: the rule a target URL must pass, raw and percent-decoded.

The rule is Unicode's own, not a list of examples: a character is refused when
- its general category is control (Cc), format (Cf: bidi overrides and isolates, zero-width
  characters), line or paragraph separator (Zl, Zp), or surrogate (Cs); or
- it is Default_Ignorable_Code_Point (DerivedCoreProperties.txt): what a renderer draws as nothing
  when it has no glyph for it. Beyond Cf that is the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0),
  the variation selectors, the Khmer inherent vowels, the combining grapheme joiner and the tag
  and reserved blocks; or
- it is one of the few letters and symbols that are neither, yet render blank by design:
  U+2800 BRAILLE PATTERN BLANK and U+1D159 MUSICAL SYMBOL NULL NOTEHEAD.
White space (U+00A0, U+3000 and the rest) is refused on its own, before this.

Python's unicodedata has no Default_Ignorable_Code_Point, so its ranges are written out below,
checked against Perl's \\p{Default_Ignorable_Code_Point} (Unicode 14); Unicode's stability policy
keeps them: the reserved ones were made default-ignorable ahead of any assignment.
"""

import unicodedata

_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
_BLANK_BY_DESIGN = frozenset({0x2800, 0x1D159})


def is_invisible(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in _CATEGORIES
        or code in _BLANK_BY_DESIGN
        or any(first <= code <= last for first, last in _DEFAULT_IGNORABLE)
    )


def first_invisible(text: str) -> str | None:
    """The first character of `text` that renders as nothing, or None. ASCII is checked by category alone."""
    return next((char for char in text if is_invisible(char)), None)
