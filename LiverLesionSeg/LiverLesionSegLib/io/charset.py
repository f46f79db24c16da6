"""The Specific Character Set a DICOM output (SEG, SR, RT structure set) declares for the text it
copies from the CT series: the patient's name, the study's description, the institution.

highdicom takes the CT's own value and refuses, with no output written, the forms that Japanese,
Korean and Chinese scanners write every day: "\\ISO 2022 IR 87" (an empty first value is the default
repertoire), "\\ISO 2022 IR 149", "\\ISO 2022 IR 58", and the single "ISO_IR 6". pydicom has already
decoded the text with the CT's value, so an output may declare UTF-8 instead and lose nothing.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import pydicom

UTF8 = "ISO_IR 192"
DEFAULT_REPERTOIRE_WITH_EXTENSIONS = "ISO 2022 IR 6"  # what an empty first value stands for

CharacterSet = Union[str, list[str]]


def declared_character_set(header: pydicom.Dataset) -> Optional[list[str]]:
    """The header's Specific Character Set as a list of its values (None where it declares none), an
    empty first value written out as the default repertoire with code extensions (PS3.3 C.12.1.1.2)."""
    value = header.get("SpecificCharacterSet")
    if value is None or value == "":
        return None
    values = [str(v).strip() for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue))
                                       else [value])]
    if len(values) > 1 and not values[0]:
        values[0] = DEFAULT_REPERTOIRE_WITH_EXTENSIONS
    return values


def output_character_set(headers: Sequence[pydicom.Dataset]) -> Optional[CharacterSet]:
    """What a highdicom output over `headers` (a series) declares: the series' own character set where
    highdicom writes it, UTF-8 where it does not. None where the series declares none: its text is then
    written back as it was read (an undeclared name may be Latin-1 or UTF-8; no guess is made)."""
    from highdicom.valuerep import _check_specific_character_set  # highdicom's own rule for the value

    values = declared_character_set(headers[0]) if headers else None
    if values is None:
        return None
    try:
        return _check_specific_character_set(values if len(values) > 1 else values[0])
    except ValueError:
        return UTF8
