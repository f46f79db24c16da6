"""Segment and ROI names read as sites write them, in their own languages (`segments.meaning_of_segment_name`):
the words of each language, their other endings, and what is neither liver nor lesion."""

from __future__ import annotations

import pytest

from LiverLesionSegLib.segments import meaning_of_segment_name, plain_text


@pytest.mark.parametrize("name, meaning", [
    # Russian: liver, tumour of the liver, metastases in the liver, focus, portal vein, liver cyst, liver with tumour
    ("Печень", "liver"), ("Опухоль печени", "lesion"), ("Метастазы в печени", "lesion"), ("Очаг 1", "lesion"),
    ("Воротная вена", None), ("Киста печени", None), ("Печень с опухолью", "liver"),
    # Polish, Czech, Turkish
    ("Wątroba", "liver"), ("Guz wątroby", "lesion"), ("Zmiana ogniskowa", "lesion"), ("Żyła wrotna", None),
    ("Torbiel", None), ("Wątroba z guzem", "liver"), ("Játra", "liver"), ("Nádor", "lesion"), ("Ložisko 2", "lesion"),
    ("Karaciğer", "liver"), ("Lezyon 1", "lesion"), ("Kitle", "lesion"), ("Karaciğer damar", None),
    # Greek, Arabic, Hebrew
    ("Ήπαρ", "liver"), ("Όγκος ήπατος", "lesion"), ("Πυλαία φλέβα", None), ("الكبد", "liver"), ("ورم", "lesion"),
    ("الوريد البابي", None), ("הכבד", "liver"), ("גידול", "lesion"), ("וריד השער", None),
    # Finnish: liver, liver tumour, metastasis, a vein of the liver, liver and tumour
    ("Maksa", "liver"), ("Maksakasvain", "lesion"), ("Etäpesäke 2", "lesion"), ("Maksan laskimo", None),
    ("Maksa ja kasvain", "liver"),
    # Hungarian: liver, liver tumour, metastasis, liver cyst (one word, two); "Major" is not "máj"
    ("Máj", "liver"), ("Májdaganat", "lesion"), ("Áttét 1", "lesion"), ("Májciszta", None), ("Máj ciszta", None),
    ("Major", None),
    # Romanian: liver, liver tumour, lesion, mass, liver cyst, liver with tumour
    ("Ficat", "liver"), ("Tumoare hepatică", "lesion"), ("Leziune 1", "lesion"), ("Formațiune", "lesion"),
    ("Chist hepatic", None), ("Ficat cu tumoare", "liver"),
    # Persian: liver, liver tumour, lesion, portal vein, liver cyst, liver with tumour
    ("کبد", "liver"), ("تومور کبد", "lesion"), ("ضایعه ۱", "lesion"), ("ورید باب", None), ("کیست کبدی", None),
    ("کبد با تومور", "liver"),
    # Thai: liver, liver tumour, liver cancer, portal vein, liver cyst
    ("ตับ", "liver"), ("เนื้องอกตับ", "lesion"), ("มะเร็งตับ", "lesion"), ("หลอดเลือดดำพอร์ทัล", None),
    ("ถุงน้ำในตับ", None),
    # Vietnamese: liver, right liver, liver tumour, metastasis, portal vein, liver cyst; "Ganglion" is not "gan"
    ("Gan", "liver"), ("Gan phải", "liver"), ("U gan 1", "lesion"), ("Khối u", "lesion"), ("Di căn gan", "lesion"),
    ("Tĩnh mạch cửa", None), ("Nang gan", None), ("Gan và khối u", "liver"), ("Ganglion", None),
    # as before
    ("Liver", "liver"), ("Tumor 2", "lesion"), ("Portal vein", None), ("Segment_1", None), ("Leber mit Tumor", "liver"),
])
def test_names_in_the_languages_of_sites_are_read(name, meaning):
    """Names in these languages were read as neither liver nor lesion: a liver "Печень" (and later a "Maksa", a
    "Gan") had its file refused ("has no liver segment"), a lesion "Guz 2" (a "Daganat") was left out."""
    assert meaning_of_segment_name(name) == meaning


@pytest.mark.parametrize("text, plain", [("Läsion", "lasion"), ("Gefäß", "gefass"), ("Żyła", "zyla"),
                                         ("Kontrastsız", "kontrastsiz"), ("Søndre", "sondre"), ("간 종양", "간 종양")])
def test_letters_that_are_no_accented_base_letter_are_made_plain(text, plain):
    assert plain_text(text) == plain
