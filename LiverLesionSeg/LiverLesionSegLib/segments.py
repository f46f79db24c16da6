"""The two output segments, with Slicer's standard terminology and colours.

Shared by the `.seg.nrrd` and DICOM SEG writers and the Slicer logic so both describe segments the same way.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Code:
    """A coded concept: (scheme, value, meaning), as DICOM and Slicer's terminologies write it."""
    scheme: str
    value: str
    meaning: str

    def slicer(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED = Code("SCT", "49755003", "Morphologically Altered Structure")
LIVER_CODE = Code("SCT", "10200004", "Liver")
MASS = Code("SCT", "4147007", "Mass")


@dataclass(frozen=True)
class SegmentSpec:
    segment_id: str
    name: str
    label: int  # value in the label map, and the DICOM SEG's segment number
    color: tuple[float, float, float]
    category: Code
    type: Code
    region: Optional[Code] = None  # where it is, for a type that does not say (a mass: in the liver)

    @property
    def terminology(self) -> str:
        """Slicer's TerminologyEntry tag."""
        region = self.region.slicer() if self.region else "^^"
        return (f"Segmentation category and type - DICOM master list~{self.category.slicer()}~{self.type.slicer()}~^^"
                f"~Anatomic codes - DICOM master list~{region}~^^")


LIVER = SegmentSpec("liver", "Liver", 1, (221 / 255, 130 / 255, 101 / 255), ANATOMICAL_STRUCTURE, LIVER_CODE)
LESION = SegmentSpec("liver_lesion", "Liver lesion", 2, (144 / 255, 238 / 255, 144 / 255), MORPHOLOGICALLY_ALTERED,
                     MASS, LIVER_CODE)
SEGMENTS = (LIVER, LESION)

# Letters that are no base letter with an accent, so that decomposing leaves them as they are
UNACCENTED = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe"})


def plain_text(name: str) -> str:
    """A name in lower case without accents ("Läsion" -> "lasion", "Gefäß" -> "gefass", "Żyła" ->
    "zyla", "Kontrastsız" -> "kontrastsiz"); Hangul syllables, which the decomposition splits into
    their letters, put together again."""
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold().translate(UNACCENTED))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


# Words in the names users give segments (in the Segment Editor, other tools, planning systems)
# that tell what they are, in English and the languages of sites that name segments in their own
# (German, French, Spanish, Italian, Portuguese, Dutch, Russian, Polish, Czech, Turkish, Greek, Arabic,
# Hebrew, Chinese, Japanese, Korean, Finnish, Hungarian, Romanian, Persian, Thai, Vietnamese); stems,
# so that a word's other endings match ("печени", "wątroby"); compared as `plain_text` makes them.
LIVER_WORDS = tuple(map(plain_text, (
    "liver", "hepat", "leber", "foie", "higado", "fegato", "figado", "lever",
    "печен", "watrob", "jatra", "jater", "karaciger", "ηπαρ", "ηπατ", "كبد", "الكبد", "כבד", "הכבד",
    "肝", "간", "maksa", "ficat", "کبد", "ตับ")))  # Finnish, Romanian, Persian, Thai
# Words too short to be a stem ("gan" begins "ganglion", "máj" "major"): the liver where a name begins
# with them as words (Vietnamese, Hungarian)
LIVER_SHORT_WORDS = re.compile(r"^(gan|maj)(\W|$)")
LESION_WORDS = tuple(map(plain_text, (
                "lesion", "tumor", "tumour", "tumeur", "mass", "metast", "hcc", "nodul", "cancer", "carcinom",
                "neoplas", "lasion", "laesie", "lesao", "raumforderung", "herd",
                "hemangiom", "haemangiom", "hamangiom", "adenom", "fnh",  # benign tumours are lesions too
                "опухол", "метастаз", "очаг", "образовани", "поражени",  # Russian: tumour, metastasis, focus, mass
                "zmian", "guz", "przerzut", "nowotw", "nador", "lozisk", "lezyon", "kitle",  # Polish, Czech, Turkish
                "ογκ", "μεταστ", "βλαβ", "ورم", "آفة", "גידול", "נגע",  # Greek, Arabic, Hebrew
                "肿瘤", "腫瘍", "病灶", "病変", "癌", "血管瘤",
                "종양", "병변", "전이", "결절", "암", "혈관종",  # Korean: tumour, lesion, metastasis, nodule, cancer
                "kasvain", "etapesake", "leesio", "daganat", "attet", "lezio",  # Finnish, Hungarian
                "tumoare", "leziune", "formatiune", "تومور", "ضایعه", "متاستاز",  # Romanian, Persian
                "เนื้องอก", "รอยโรค", "มะเร็ง",  # Thai: tumour, lesion, cancer
                "khối u", "u gan", "di căn", "tổn thương", "ung thư")))  # Vietnamese
NOT_LIVER_WORDS = tuple(map(plain_text, (
                   "vessel", "vein", "vena", "vene", "arter", "duct", "cyst", "kyst", "zyst", "quiste", "cisti",
                   "gefass", "pfortader", "сосуд", "вен", "артери", "кист", "проток", "naczyn", "zyl", "tetnic",
                   "torbiel", "damar", "kist", "αγγει", "φλεβ", "αρτηρ", "κυστ", "وريد", "شريان", "كيس", "וריד",
                   "עורק", "ציסט", "血管", "囊肿", "嚢胞",
                   "혈관", "정맥", "동맥", "문맥", "담관", "낭종",
                   "suon", "laskimo", "valtimo", "sappitie", "ciszta", "chist", "ورید", "شریان", "کیست",
                   "หลอดเลือด", "ถุงน้ำ", "ซีสต์", "mạch máu", "tĩnh mạch", "động mạch", "nang gan", "ống mật")))
# (the last lines: Finnish, Hungarian, Romanian, Persian, Thai, Vietnamese) in the liver, but not liver tissue
LESION_CODES = {"108369006", "86049000", "4147007", "52988006", "25370001"}  # SCT tumour, neoplasm, mass, lesion, HCC
LIVER_CODES = {LIVER_CODE.value}  # SCT liver
RT_TARGETS = ("gtv", "ctv", "itv", "ptv")  # radiotherapy's target volumes; the gross tumour (GTV) is the lesion
# "Liver incl. tumor", "Liver with lesions", "Leber mit Tumor": the whole organ, not a lesion
INCLUDING_WORDS = ("incl", "with", "+", "&", " and ", "mit ", "inkl", "avec", "con ", " с ", " z ", " s ", " ile ",
                   " με ", " مع ", " עם ", "含", "포함", " ja ", " es ", " cu ", " با ", " و ", " va ", "รวม")
LESION_FREE = re.compile(r"(lesion|tumou?r|metastas[ie]s)[- ]?free")  # "tumour-free liver"


def meaning_of_segment_name(name: str) -> str | None:
    """'liver', 'lesion' or None for a segment (or ROI) name as users type it: "Liver"; "Liver
    lesion", "Tumor 2", "HCC", "GTV1"; TG-263's "Liver-GTV" (the liver less its target), "Liver incl.
    tumor" and "tumour-free liver" are liver;
    vessels, cysts, planning margins (PTV, CTV) and other organs are neither. Also in other
    languages ("Leber", "Lebermetastase", "lésion", "肝"), accents or none."""
    text = plain_text(name)
    organ, _, subtracted = text.partition("-")
    if _begins_with_liver(organ.strip()) and subtracted.strip().startswith(RT_TARGETS):
        return "liver"
    if (any(word in text for word in LIVER_WORDS) or _begins_with_liver(text)) and (
            LESION_FREE.search(text) or (_begins_with_liver(text) and any(w in text for w in INCLUDING_WORDS))):
        return "liver"
    if text.startswith("gtv") or any(word in text for word in LESION_WORDS):
        return "lesion"
    if _begins_with_liver(text) and not any(word in text for word in NOT_LIVER_WORDS):
        return "liver"
    return None


def _begins_with_liver(text: str) -> bool:
    return text.startswith(LIVER_WORDS) or LIVER_SHORT_WORDS.match(text) is not None


def meaning_of_segment(name: str, type_code: Optional[Code]) -> str | None:
    """'liver', 'lesion' or None for a segment by its name (`meaning_of_segment_name`), else by its
    coded type (a DICOM SEG's property type; a Slicer segment's terminology where Slicer made its name
    from it, as in a translated Slicer, "Maks" coded SCT 10200004) where the name says nothing and
    names no vessel or cyst. A name a reader typed wins: one who renames a "Liver lesion" segment
    "Abscess" leaves its Mass code."""
    named = meaning_of_segment_name(name)
    if named is not None or type_code is None or any(word in plain_text(name) for word in NOT_LIVER_WORDS):
        return named
    if type_code.value in LIVER_CODES:
        return "liver"
    if type_code.value in LESION_CODES:
        return "lesion"
    return meaning_of_segment_name(type_code.meaning)  # another scheme's code ("SRT^T-62000^Liver")


def terminology_type(entry: str) -> Optional[Code]:
    """The type of Slicer's TerminologyEntry tag (written as `SegmentSpec.terminology`: context, category,
    type, ... joined by '~', each code "scheme^value^meaning"), None where it gives none."""
    fields = entry.split("~")
    if len(fields) < 3:
        return None
    scheme, value, meaning = (fields[2].split("^") + ["", ""])[:3]
    return Code(scheme, value, meaning) if value or meaning else None


def warn_of_left_out(path: str | os.PathLike, names: Sequence[str], what: str = "segment") -> None:
    """One warning naming the segments (or ROIs) of `path` left out as neither liver nor lesion by their
    names: a lesion segment under Slicer's default name ("Segment_2") was dropped with nothing said."""
    if not names:
        return
    listed = ", ".join(f"'{name}'" for name in names)
    logging.getLogger("LiverLesionSeg").warning(
        "%s: left out %d %s%s that %s neither liver nor lesion by name: %s (a liver is read when named e.g. 'Liver', "
        "a lesion when named e.g. 'Liver lesion', 'Tumor' or 'HCC')", path, len(names), what,
        "s" if len(names) > 1 else "", "are" if len(names) > 1 else "is", listed)
