"""What a series says of how its images were reconstructed: the kernel, a projection, and a dual-energy
CT's image.

A study often holds the same acquisition reconstructed with a soft-tissue kernel and with a sharp
one for the lungs or the bones ("Lung 1.0 B70f", "BONE PLUS"), thinner and so of more slices; the
model learned on soft-tissue images, whose noise is a fraction of a sharp kernel's. The sharp ones
are told by their description ("Lung", "Bone", "Lunge", "Knochen", "Poumon") or their kernel
(GE's LUNG, BONE, BONEPLUS, EDGE, DETAIL; Siemens' B60f, Br64d, I70f: a sharpness of 50 or more;
Canon's FC30 and up). Slabs of maximum or minimum intensity projection ("MIP 10mm", "MinIP") show
each voxel's brightest or darkest neighbour, not its own value.

A dual-energy scanner (Siemens, GE, Philips, Canon) sends one acquisition as several series of the
same slices and description stem: the conventional (mixed) image, virtual monoenergetic images at
40 to 190 keV, each tube's image (80 kV, Sn140 kV), a virtual non-contrast image, and material
maps (iodine density, Z effective, electron density) whose voxels are no Hounsfield units. The
model learned on conventional images of contrast-enhanced CT, so a conventional image or one close
to it (about 70 keV) is chosen first, a material map last. Read from the words scanners write:
"MonoE 70keV", "Mono+ 40 keV", "A_80kV", "Sn140kV", "Iodine Density", "GSI MD Iodine(Water)",
"Z Effective", "Electron Density", "VNC", "LiverVNC", "Virtual Non Contrast".

Where a scanner writes DICOM's own terms for them (Image Type's values 3 and 4, Rescale Type, the
Monoenergetic Energy Equivalent), those are read first: de-identification removes a series'
description unless it is told to keep it, and keeps these.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from ..segments import plain_text

# Maps of a material's density or of an atomic number, whose values are no CT image's
MATERIAL_MAP = re.compile(r" (?:(?:iod|jod|yod)\w*|z ?eff\w*|effective (?:z|atomic)|electron density|rho|uric acid) ")
VIRTUAL_NON_CONTRAST = re.compile(r"vnc|virtual(?:ly)? ?(?:non ?contrast|un ?enhanced|nativ\w*)|virtuell\w* nativ")
KEV = re.compile(r" (\d{2,3}) ?kev")
KV = re.compile(r" (?:sn ?)?(\d{2,3}) ?kvp?\b")
SHARP_WORDS = re.compile(r" (?:lung\w*|bone\w*|lunge\w*|knochen\w*|poumon\w*|osseo\w*|hueso\w*) ")
SHARP_KERNEL_NAMES = re.compile(r"^(?:lung|bone|boneplus|bone plus|edge|detail|sharp)$")
NUMBERED_KERNEL = re.compile(r"^(?:[a-z]{1,2})(\d{2})[a-z]?$")  # Siemens: B30f, Br40d, I70f, Qr44
CANON_KERNEL = re.compile(r"^fc ?(\d{2})$")
SHARP_FROM = 50  # a Siemens kernel's sharpness from which it is a bone or lung one (B50f and up)
CANON_SHARP_FROM = 30  # FC01 to FC2x are Canon's body kernels
PROJECTION = re.compile(r" (?:mip|minip|mnip|maxip|max ip|min ip|vrt?) |projection")
# DICOM's terms (PS3.3 C.8.2.1.1.1, C.8.16.1.4, C.11.1.1.2), as in Image Type from its value 3 and in Rescale Type
MATERIAL_MAP_TYPES = {"MAT_SPECIFIC", "MAT_FRACTIONAL", "MAT_VALUE_BASED", "EFF_ATOMIC_NUM", "ELECTRON_DENSITY"}
MATERIAL_MAP_UNITS = {"MGML", "Z_EFF", "ED", "EDW", "PCT"}  # mg/ml, effective Z, electron density, percent
MATERIAL_REMOVED = "MAT_REMOVED"  # the iodine taken out: a virtual non-contrast image
PROJECTION_TYPES = {"MAXIMUM", "MINIMUM", "MIP", "MINIP", "PROJECTION IMAGE"}
CONVENTIONAL_KEV = 70.0  # the monoenergetic image closest to a conventional 120 kV one
CONVENTIONAL_KV = 120.0


def words_of(description: str) -> str:
    """The description in lower case without accents, its words between single spaces and at both ends
    (so that a pattern finds whole words)."""
    return " " + re.sub(r"[^0-9a-z]+", " ", plain_text(description)) + " "


def material_map_evidence(description: str, image_type: Sequence[str] = (), rescale_type: str = ""
                          ) -> Optional[str]:
    """What tells that a series is a material map (iodine, Z effective, electron density): its Image
    Type, its Rescale Type or its description; None where nothing does."""
    types = sorted(MATERIAL_MAP_TYPES.intersection(image_type[2:]))
    if types:
        return f"Image Type {types[0]}"
    if rescale_type.upper() in MATERIAL_MAP_UNITS:
        return f"Rescale Type {rescale_type.upper()}"
    return "its description" if MATERIAL_MAP.search(words_of(description)) else None


def is_virtual_non_contrast(description: str, image_type: Sequence[str] = ()) -> bool:
    return MATERIAL_REMOVED in image_type[2:] or bool(VIRTUAL_NON_CONTRAST.search(words_of(description)))


def energy_offset(description: str, kev: Optional[float] = None) -> Optional[float]:
    """How far the image's energy lies from a conventional image's, in keV (a monoenergetic image, by
    its Monoenergetic Energy Equivalent `kev` or its description) or in kV (one tube's image of a
    dual-source scanner); None where nothing names an energy."""
    if kev is not None:
        return abs(kev - CONVENTIONAL_KEV)
    text = words_of(description)
    kev = KEV.search(text)
    if kev:
        return abs(float(kev[1]) - CONVENTIONAL_KEV)
    kv = KV.search(text)
    return abs(float(kv[1]) - CONVENTIONAL_KV) if kv else None


def is_sharp(description: str, kernel: str) -> bool:
    """Whether a series is a sharp (lung or bone) reconstruction by its description or its
    ConvolutionKernel (each of its values, as Siemens writes "Br64d\\3")."""
    if SHARP_WORDS.search(words_of(description)):
        return True
    for value in kernel.lower().split("\\"):
        value = value.strip()
        numbered = NUMBERED_KERNEL.match(value) or CANON_KERNEL.match(value)
        sharp_from = CANON_SHARP_FROM if CANON_KERNEL.match(value) else SHARP_FROM
        if SHARP_KERNEL_NAMES.match(value) or (numbered and int(numbered[1]) >= sharp_from):
            return True
    return False


def is_projection(description: str, image_type: Sequence[str] = ()) -> bool:
    """Whether a series is of intensity projections (MIP, MinIP) or a volume rendering, by its Image
    Type or its description."""
    return bool(PROJECTION_TYPES.intersection(image_type[2:])) or bool(PROJECTION.search(words_of(description)))
