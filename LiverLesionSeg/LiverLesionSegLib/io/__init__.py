"""Readers and writers: DICOM series, 3D-IRCADb-01, DICOM SEG, NIfTI/NRRD, label maps, .seg.nrrd."""
