"""The six shared cases by name, for tests run on each of them."""

import pytest

SHARED_CASES = {  # case -> its folder under the unpacked data: the folder a user would give
    "3Dircadb1.1": "ircadb/3Dircadb1.1",
    "3Dircadb1.7": "ircadb/3Dircadb1.7",
    "3Dircadb1.17": "ircadb/3Dircadb1.17",
    "RadCTTACEomics_0697": "tace/RadCTTACEomics_0697",
    "RadCTTACEomics_1211": "tace/RadCTTACEomics_1211",
    "HCC_006": "hcc-tace-seg/HCC_006",
}


def every_shared_case() -> list:
    """The shared cases as `pytest.param`s (the case's name, then its folder), each in the xdist
    group of its case: the tests that compare against `core_segmentation` run in the process that
    made it (pytest's `--dist loadgroup`)."""
    return [pytest.param(name, folder, id=name, marks=pytest.mark.xdist_group(name))
            for name, folder in SHARED_CASES.items()]
