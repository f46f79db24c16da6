"""Checks shared by the reader tests: a case read from disk against the reference numbers of
`../shared/data/cases.json`; a DICOM SEG written over a series read back onto its grid."""

import numpy as np
from scipy import ndimage


def assert_case_matches(case, expected):
    liver, lesion = case.liver.array, case.lesion.array
    assert case.ct.shape == (expected["slices"], expected["rows"], expected["columns"])
    assert liver.dtype == lesion.dtype == np.uint8 and liver.max() <= 1 and lesion.max() <= 1
    assert case.liver.same_grid(case.ct) and case.lesion.same_grid(case.ct)
    assert int(liver.sum()) == expected["liver_voxels"]
    assert int(lesion.sum()) == expected["lesion_voxels"]
    assert ndimage.label(lesion, np.ones((3, 3, 3)))[1] == expected["lesion_components_3d_26"]
    assert int((lesion & (1 - liver)).sum()) == expected["lesion_voxels_outside_liver"]
    slices = np.flatnonzero(liver.any(axis=(1, 2)))
    assert [slices[0], slices[-1]] == expected["liver_slice_range"]
    assert int(lesion.any(axis=(1, 2)).sum()) == expected["slices_with_lesion"]


def assert_dicom_seg_reads_back(found, ct, path) -> None:
    """A label map of two boxes (liver, lesion inside it) on `ct`, the series `found` (an
    `InputCT`) read, written as a DICOM SEG over that series to `path`: it reads back voxel for voxel."""
    from LiverLesionSegLib.io.dicomseg import read_seg_masks
    from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg

    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    save_dicom_seg(path, ct.with_array(labels), found.series, ["m"])
    masks = read_seg_masks(path, ct)
    np.testing.assert_array_equal(masks["liver"], labels == 1)
    np.testing.assert_array_equal(masks["lesion"], labels == 2)
