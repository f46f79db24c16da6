"""What a series description says of a dual-energy (spectral) CT's reconstruction.

A dual-energy scanner (Siemens, GE, Philips, Canon) sends one acquisition as several series of the
same slices and description stem: the conventional (mixed) image, virtual monoenergetic images at
40 to 190 keV, each tube's image (80 kV, Sn140 kV), a virtual non-contrast image, and material
maps (iodine density, Z effective, electron density) whose voxels are no Hounsfield units. The
model learned on conventional images of contrast-enhanced CT, so a conventional image or one close
to it (about 70 keV) is chosen first, a material map last. Read from the words scanners write:
"MonoE 70keV", "Mono+ 40 keV", "A_80kV", "Sn140kV", "Iodine Density", "GSI MD Iodine(Water)",
"Z Effective", "Electron Density", "VNC", "LiverVNC", "Virtual Non Contrast".
"""

from __future__ import annotations

import re
from typing import Optional

from ..segments import plain_text

# Maps of a material's density or of an atomic number, whose values are no CT image's
MATERIAL_MAP = re.compile(r" (?:(?:iod|jod|yod)\w*|z ?eff\w*|effective (?:z|atomic)|electron density|rho|uric acid) ")
VIRTUAL_NON_CONTRAST = re.compile(r"vnc|virtual(?:ly)? ?(?:non ?contrast|un ?enhanced|nativ\w*)|virtuell\w* nativ")
KEV = re.compile(r" (\d{2,3}) ?kev")
KV = re.compile(r" (?:sn ?)?(\d{2,3}) ?kvp?\b")
CONVENTIONAL_KEV = 70.0  # the monoenergetic image closest to a conventional 120 kV one
CONVENTIONAL_KV = 120.0


def words_of(description: str) -> str:
    """The description in lower case without accents, its words between single spaces and at both ends
    (so that a pattern finds whole words)."""
    return " " + re.sub(r"[^0-9a-z]+", " ", plain_text(description)) + " "


def is_material_map(description: str) -> bool:
    """Whether the description names a material map (iodine, Z effective, electron density)."""
    return bool(MATERIAL_MAP.search(words_of(description)))


def is_virtual_non_contrast(description: str) -> bool:
    return bool(VIRTUAL_NON_CONTRAST.search(words_of(description)))


def energy_offset(description: str) -> Optional[float]:
    """How far the description's energy lies from a conventional image's, in keV (a monoenergetic
    image) or in kV (one tube's image of a dual-source scanner); None where it names no energy."""
    text = words_of(description)
    kev = KEV.search(text)
    if kev:
        return abs(float(kev[1]) - CONVENTIONAL_KEV)
    kv = KV.search(text)
    return abs(float(kv[1]) - CONVENTIONAL_KV) if kv else None
