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
    # as before
    ("Liver", "liver"), ("Tumor 2", "lesion"), ("Portal vein", None), ("Segment_1", None), ("Leber mit Tumor", "liver"),
])
def test_names_in_the_languages_of_sites_are_read(name, meaning):
    """Names in these languages were read as neither liver nor lesion: a liver "Печень" had its file
    refused ("has no liver segment"), a lesion "Guz 2" was left out."""
    assert meaning_of_segment_name(name) == meaning


@pytest.mark.parametrize("text, plain", [("Läsion", "lasion"), ("Gefäß", "gefass"), ("Żyła", "zyla"),
                                         ("Kontrastsız", "kontrastsiz"), ("Søndre", "sondre"), ("간 종양", "간 종양")])
def test_letters_that_are_no_accented_base_letter_are_made_plain(text, plain):
    assert plain_text(text) == plain
