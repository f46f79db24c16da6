"""Multi-frame (enhanced) CT: a real series made into one multi-frame file reads as its slices do."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pytest

from bad_inputs import multiframe_file, refusal_in_a_process_of_its_own
from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.io.dicom import _check_steps, read_series
from LiverLesionSegLib.io.dicom_scan import scan_folder
from LiverLesionSegLib.io.series_choice import choose_ct_series


@pytest.fixture(scope="module")
def hcc_006(data_dir):
    """HCC_006's CT series (its slices' files, sorted along the normal) and its single-frame volume."""
    info = choose_ct_series(scan_folder(data_dir / "hcc-tace-seg" / "HCC_006"))
    return info.files, read_series(info)


def damaged_multiframe(hcc_006, tmp_path: Path, damage: Callable[[pydicom.Dataset], None]) -> Path:
    """The first 8 slices of HCC_006 as one multi-frame file, `damage(dataset)` done to it."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    damage(ds)
    ds.save_as(path)
    return path


@pytest.mark.parametrize("order", ["feet first", "head first"])
def test_a_multiframe_ct_reads_as_its_slices_do(hcc_006, tmp_path, order):
    """The folder or the file itself: the same HU (int16) on the same grid, whichever order the frames
    are stored in (highdicom sorts them; the reader turns them round when they run against the normal)."""
    files, single = hcc_006
    path = multiframe_file(files if order == "feet first" else files[::-1], tmp_path / "enhanced" / "ct.dcm")
    for given in (path.parent, path):
        volume = read_input_volume(given)
        assert volume.array.dtype == np.int16 and np.array_equal(volume.array, single.array)
        assert volume.same_grid(single) and np.allclose(volume.direction, single.direction)
        assert str(path) in volume.source and "series 90" in volume.source


def test_a_multiframe_ct_without_its_study_uid_reads_as_slices_so_stripped_do(hcc_006, tmp_path):
    """An anonymiser that removes StudyInstanceUID: a series of slices so stripped was read, the one
    multi-frame file refused in highdicom's words, "cannot read the multi-frame image (no StudyInstanceUID)"
    (an item left from earlier stops)."""
    files, single = hcc_006
    path = damaged_multiframe(hcc_006, tmp_path, lambda ds: delattr(ds, "StudyInstanceUID"))
    volume = read_input_volume(path)
    assert np.array_equal(volume.array, single.array[:8]) and volume.shape[0] == 8


def test_a_rescale_slope_gives_float_hounsfield_units(hcc_006, tmp_path):
    files, single = hcc_006
    edited = []
    for path in files[:8]:
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, -1024
        ds.save_as(tmp_path / path.name)
        edited.append(tmp_path / path.name)
    volume = read_input_volume(multiframe_file(edited, tmp_path / "enhanced" / "ct.dcm"))
    stored = single.array[:8].astype(np.float32) - float(pydicom.dcmread(files[0]).RescaleIntercept)
    assert volume.array.dtype == np.float32 and np.allclose(volume.array, stored * 0.5 - 1024)


@pytest.mark.parametrize("form", ["single-frame slices", "multi-frame file"])
def test_a_negative_rescale_slope_is_refused(hcc_006, tmp_path, form):
    """Found by `tools/damage_inputs.py --kind multiframe`: a RescaleSlope of -1 read the CT negated
    (air bright, bone dark), segmented with only the caution that no liver was found."""
    files, _ = hcc_006
    folder = tmp_path / "slices"
    folder.mkdir()
    for path in files[:8]:
        ds = pydicom.dcmread(path)
        ds.RescaleSlope = -1
        ds.save_as(folder / path.name)
    given = folder if form == "single-frame slices" else multiframe_file(sorted(folder.iterdir()),
                                                                        tmp_path / "enhanced" / "ct.dcm")
    with pytest.raises(InputError, match=r"its RescaleSlope is -1: its values would be read negated, not as "
                                         r"Hounsfield units"):
        read_input_volume(given)


def _shared(ds, sequence: str):
    """The item of a functional group the frames share."""
    return ds.SharedFunctionalGroupsSequence[0][sequence][0]


def _infinite(ds, keyword: str) -> None:
    setattr(_shared(ds, "PixelValueTransformationSequence"), keyword,
            pydicom.valuerep.DSfloat("inf", auto_format=False, validation_mode=0))


@pytest.mark.parametrize("damage, told", [
    (lambda ds: ds.PerFrameFunctionalGroupsSequence.pop(1),
     r"holds 8 frames but 7 per-frame descriptions \(PerFrameFunctionalGroupsSequence\), so where each frame lies "
     r"cannot be told\. The file is damaged; export the series again\."),
    (lambda ds: setattr(ds, "Rows", 64),
     r"its pixel data holds 4194304 bytes, 8 times the 524288 its 8 frames of 64 x 512 \(Rows x Columns\) need: the "
     r"header is damaged\. Export the series again\."),
    (lambda ds: setattr(_shared(ds, "PixelMeasuresSequence"), "SpacingBetweenSlices", None),
     r"cannot read the multi-frame image \(the frames' shared PixelMeasuresSequence holds an empty "
     r"SpacingBetweenSlices\)"),
    (lambda ds: _infinite(ds, "RescaleSlope"), r"has an unusable RescaleSlope \(inf\)\. The file is damaged or was"),
    (lambda ds: _infinite(ds, "RescaleIntercept"), r"has an unusable RescaleIntercept \(inf\)"),
    (lambda ds: setattr(ds, "BitsAllocated", 64),
     r"its BitsAllocated is 64, where an image of grey values allocates 8, 16 or 32 bits a pixel: the header is "
     r"damaged"),
    (lambda ds: setattr(ds, "BitsStored", 17), r"its BitsStored \(17\) is more than its BitsAllocated \(16\)"),
    (lambda ds: setattr(ds, "Columns", 65535),
     r"its header's description of its pixel data is damaged \(its pixel data holds 4194304 bytes, what 8 frames of "
     r"512 x 512 take, where its header gives 512 x 65535 \(Rows x Columns\)\)\. Export the series again\."),
    (lambda ds: setattr(ds, "BitsAllocated", 32),
     r"its header's description of its pixel data is damaged \(its pixel data holds 4194304 bytes, what its 8 frames "
     r"of 512 x 512 take at 16 bits a pixel, where its BitsAllocated gives 32\)")],
    ids=["a frame's groups removed", "Rows", "SpacingBetweenSlices empty", "slope inf", "intercept inf",
         "BitsAllocated 64", "BitsStored 17", "Columns 65535", "BitsAllocated 32"])
def test_a_damaged_header_is_told_as_such(hcc_006, tmp_path, damage, told):
    """Found by `tools/damage_inputs.py --kind multiframe`: one frame's functional groups removed (seed
    37010) was told as "slice positions jump … so a slice is missing"; a Rows damaged is told as a
    single-frame slice's is; an empty SpacingBetweenSlices (seed 38005) in highdicom's words, "no element
    (0028,9110) PixelMeasuresSequence", which is there (an empty SliceThickness reads); a RescaleSlope of
    inf (seed 36001) as "52 % of its voxels lie above 4000 …: its values are not Hounsfield units"; a
    BitsAllocated of 64 (seed 41002) in highdicom's internal words ("'_CombinedPixelTransform' object has
    no attribute 'input_dtype'"), and a BitsStored over BitsAllocated was read without a word; a Columns
    of 65535 (seed 42006) or a BitsAllocated of 32 as pixel data cut short ("holds 4194304 of the
    536862720 bytes … The file may be truncated")."""
    path = damaged_multiframe(hcc_006, tmp_path, damage)
    with pytest.raises(InputError, match=rf"ct\.dcm: {told}"):
        read_input_volume(path)


@pytest.mark.parametrize("sequence", ["PlanePositionSequence", "ConversionSourceAttributesSequence"])
def test_a_required_sequence_left_empty_is_named(hcc_006, tmp_path, sequence):
    """Found by `tools/damage_inputs.py --kind multiframe`: highdicom's "list index out of range"."""
    path = damaged_multiframe(hcc_006, tmp_path,
                              lambda ds: setattr(ds.PerFrameFunctionalGroupsSequence[3][sequence], "value", []))
    with pytest.raises(InputError, match=rf"ct\.dcm: cannot read the multi-frame image \(its {sequence} \(in "
                                         r"PerFrameFunctionalGroupsSequence item 4\) is empty, where an item is "
                                         r"needed\)"):
        read_input_volume(path)


@pytest.mark.parametrize("frame", [0, 5])
def test_a_frame_without_its_position_is_named(hcc_006, tmp_path, frame):
    """A frame's ImagePositionPatient removed was told as the DimensionIndexSequence "points to (0020,0032)
    ImagePositionPatient in (0020,9113) PlanePositionSequence, which its frames' … does not hold" where
    the first frame lacked it (as if every frame did); another frame's was named already."""
    path = damaged_multiframe(hcc_006, tmp_path, lambda ds: delattr(
        ds.PerFrameFunctionalGroupsSequence[frame].PlanePositionSequence[0], "ImagePositionPatient"))
    with pytest.raises(InputError, match=rf"ct\.dcm: cannot read the multi-frame image \(frame {frame + 1}'s "
                                         r"\(0020,9113\) PlanePositionSequence has no \(0020,0032\) "
                                         r"ImagePositionPatient\)"):
        read_input_volume(path)


@pytest.mark.parametrize("damage, told", [
    (lambda ds: setattr(ds.SharedFunctionalGroupsSequence[0], "PixelValueTransformationSequence", []),
     "cannot read the multi-frame image (its PixelValueTransformationSequence (in SharedFunctionalGroupsSequence "
     "item 1) is empty, where an item is needed)"),
    (lambda ds: setattr(ds["PhotometricInterpretation"], "value", None),
     "its PhotometricInterpretation is empty, where a slice of one sample per pixel, as a CT's is, says MONOCHROME2"),
    (lambda ds: setattr(ds["SOPClassUID"], "value", None), "cannot read the multi-frame image (no SOPClassUID)")],
    ids=["rescale sequence emptied", "PhotometricInterpretation emptied", "SOPClassUID emptied"])
def test_an_emptied_value_is_told_in_words(hcc_006, tmp_path, damage, told):
    """Found emptying each element of a multi-frame CT in turn: Python's "list index out of range" as the
    frames were decoded, pixel data said to be perhaps truncated for an empty PhotometricInterpretation,
    and highdicom's "'No IOD found for SOP Class UID: .'"."""
    path = damaged_multiframe(hcc_006, tmp_path, damage)
    with pytest.raises(InputError) as exc:
        read_input_volume(path)
    assert str(exc.value).startswith(f"{path}: {told}"), str(exc.value)


@pytest.mark.parametrize("group, element", [("FrameContentSequence", "StackID"),
                                            ("ConversionSourceAttributesSequence", "ReferencedSOPInstanceUID")])
def test_a_frame_lacking_an_element_the_others_hold_is_named(hcc_006, tmp_path, group, element):
    """damage_inputs --kind multiframe, seeds 33009 and 34005: one frame's StackID or source reference
    removed was told as highdicom or Python named the element alone, "no element (0020,9056) StackID",
    "no ReferencedSOPInstanceUID"."""
    path = damaged_multiframe(hcc_006, tmp_path,
                              lambda ds: delattr(ds.PerFrameFunctionalGroupsSequence[6][group][0], element))
    with pytest.raises(InputError, match=rf"ct\.dcm: cannot read the multi-frame image \(frame 7's {group} has no "
                                         rf"{element}, which the other frames' hold\)"):
        read_input_volume(path)


@pytest.mark.parametrize("damage, told", [
    ("BitsAllocated 0", "its BitsAllocated is 0, where an image of grey values allocates 8, 16 or 32 bits a pixel"),
    ("no BitsAllocated", "Missing required element: (0028,0100) 'Bits Allocated'"),  # seed 32023
    ("cut", "its pixel data holds 1048576 of the 4194304 bytes its 8 frames of 512 x 512 need"),
    ("no PixelData", None)])
def test_pixel_data_that_cannot_be_decoded_is_told_in_pydicoms_words_made_plain(hcc_006, tmp_path, damage, told):
    """Found by `tools/damage_inputs.py --kind multiframe`: a BitsAllocated of 0 was highdicom's internal
    "'_CombinedPixelTransform' object has no attribute 'input_dtype'", and pixel data cut short was
    told with pydicom's "... - the dataset may be corrupted, have an invalid group 0028 element value,
    or the transfer syntax may be incorrect". A file without pixel data (seed 26054) is told as a slice
    is, not in pydicom's "The dataset in 'src' has no 'Pixel Data' … element"."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    if damage == "cut":
        ds.PixelData = ds.PixelData[:len(ds.PixelData) // 4]
    elif damage == "no PixelData":
        del ds.PixelData
    elif damage == "no BitsAllocated":
        del ds.BitsAllocated
    else:
        ds.BitsAllocated = 0
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_input_volume(path)
    if told is None:
        assert str(exc.value) == f"{path}: has no pixel data (a truncated file?). Export the series again."
    elif damage == "cut":
        assert f"ct.dcm: cannot decode the pixel data ({told}" in str(exc.value)
    elif damage == "BitsAllocated 0":
        assert f"ct.dcm: {told}: the header is damaged" in str(exc.value)
    else:  # the header is damaged, not the pixel data
        assert f"ct.dcm: its header's description of its pixel data is damaged ({told}" in str(exc.value)


def test_a_dicom_file_naming_no_series_is_told_as_a_dicom_file(hcc_006, tmp_path):
    """Found by `tools/damage_inputs.py --kind multiframe` (bytes of its header changed): a DICOM file
    whose header holds no SeriesInstanceUID was told "is neither a DICOM, NIfTI or NRRD image"."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    del ds.SeriesInstanceUID
    ds.save_as(path)
    with pytest.raises(InputError, match=r"ct\.dcm: is a DICOM file whose header names no series and no image "
                                         r"position \(no SeriesInstanceUID, no ImagePositionPatient\)"):
        read_input_volume(path)


def test_a_multiframe_copy_beside_its_slices_is_no_segmentation_naming_them(hcc_006, tmp_path, caplog):
    """A Legacy Converted Enhanced CT references the series it was made from, as a DICOM SEG references
    the series it was drawn on: with both in one folder the slices were chosen "referenced by the DICOM
    SEG (or RTSTRUCT) in the folder", which holds none. Only a segmentation's references choose now."""
    files, single = hcc_006
    folder = tmp_path / "both"
    folder.mkdir()
    for path in files[:8]:
        shutil.copy(path, folder / path.name)
    multiframe_file(files[:8], folder / "enhanced.dcm", series_uid="1.2.3.4.5")
    assert "ReferencedSeriesSequence" in pydicom.dcmread(folder / "enhanced.dcm", stop_before_pixels=True)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        volume = read_input_volume(folder)
    assert np.array_equal(volume.array, single.array[:8])
    assert "chose series" in caplog.text and "DICOM SEG" not in caplog.text


def test_a_multiframe_file_without_number_of_frames_is_no_single_slice(hcc_006, tmp_path):
    """Found by `tools/damage_inputs.py --kind multiframe` (seed 30039): an enhanced CT whose
    NumberOfFrames was removed was told as "a single DICOM slice. Give the folder that holds the whole
    series"."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    del ds.NumberOfFrames
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_input_volume(path)
    assert str(exc.value) == (f"{path}: is a multi-frame image (8 per-frame descriptions) whose header gives no "
                              "NumberOfFrames. The file is damaged; export the series again.")


def test_the_folder_scan_counts_frames_and_sees_the_orientation(hcc_006, tmp_path):
    """A multi-frame series ranks by its frames and is known to be axial (from its functional groups)."""
    files, _ = hcc_006
    multiframe_file(files, tmp_path / "both" / "enhanced.dcm")
    for path in files[:5]:  # beside it, five single-frame slices of another series
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        ds.save_as(tmp_path / "both" / path.name)
    scan = scan_folder(tmp_path / "both")
    enhanced = next(s for s in scan.series if s.multiframe)
    assert enhanced.images == len(files) and enhanced.is_axial and len(enhanced.files) == 1
    assert choose_ct_series(scan) is enhanced  # more axial slices than the five beside it


def test_two_frames_at_one_position_ask_for_one_phase_two_files_for_a_duplicate_removed():
    """Two phases stored as frames of one file at the same positions are not duplicate files."""
    along = np.array([0.0, 2.5, 2.5, 5.0])
    with pytest.raises(GeometryError, match=r"(?i)\(frame 2 and frame 3\).*export one phase or time point"):
        _check_steps(along, ["frame 1", "frame 2", "frame 3", "frame 4"], "ct.dcm")
    with pytest.raises(GeometryError, match=r"(?i)\(b.dcm and c.dcm\).*remove the duplicate files"):
        _check_steps(along, ["a.dcm", "b.dcm", "c.dcm", "d.dcm"], "folder")


def test_signed_values_declared_unsigned_are_read_as_written(hcc_006, tmp_path, caplog):
    """Frames holding signed HU (air -1000) but declaring PixelRepresentation 0 (as single-frame
    slices so written are read: `test_io_dicom.py`): read as declared, air would lie at 64 536 HU.
    They are read signed, with a warning, as the series exported right."""
    import logging

    from pydicom import uid as dicom_uid

    files, single = hcc_006
    edited = []
    for path in files[:8]:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        ds.PixelData, ds.PixelRepresentation, ds.RescaleIntercept = hu.astype(np.int16).tobytes(), 0, 0
        ds.BitsStored, ds.HighBit = 16, 15
        ds.file_meta.TransferSyntaxUID = dicom_uid.ExplicitVRLittleEndian
        ds.save_as(tmp_path / path.name)
        edited.append(tmp_path / path.name)
    path = multiframe_file(edited, tmp_path / "enhanced" / "ct.dcm")
    assert pydicom.dcmread(path).pixel_array.max() > 60000  # as declared
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_input_volume(path)
    assert volume.array.dtype == np.int16 and np.array_equal(volume.array, single.array[:8])
    assert "declare their pixels unsigned (PixelRepresentation 0)" in caplog.text


@pytest.mark.parametrize("group, keyword, value, told", [
    ("PlanePositionSequence", "ImagePositionPatient", "", "frame 3's ImagePositionPatient (in PlanePositionSequence) "
                                                          "is empty or missing"),
    ("PlanePositionSequence", "ImagePositionPatient", [1, 2],
     "frame 3's ImagePositionPatient (in PlanePositionSequence) is '[1.0, 2.0]' (3 numbers needed)"),
    ("PlaneOrientationSequence", "ImageOrientationPatient", "", "the frames' shared ImageOrientationPatient (in "
                                                                "PlaneOrientationSequence) is empty or missing"),
    ("PixelMeasuresSequence", "PixelSpacing", "", "the frames' shared PixelSpacing (in PixelMeasuresSequence) is "
                                                  "empty or missing"),
    ("PlaneOrientationSequence", "ImageOrientationPatient", None, "the frames' shared ImageOrientationPatient (in "
                                                                  "PlaneOrientationSequence) is empty or missing"),
])
def test_a_frame_without_a_usable_plane_value_is_told_which(hcc_006, tmp_path, group, keyword, value, told):
    """Found by `tools/damage_inputs.py --kind multiframe`, seed 17011: a frame's ImagePositionPatient
    left empty was told in highdicom's words ("'NoneType' object is not subscriptable"); a shared
    orientation left empty as a sequence that is not there. Removed (None; seed 25015), which highdicom
    lets pass: "has a header value that cannot be used (no ImageOrientationPatient)", naming the file's folder."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    frame = ds.PerFrameFunctionalGroupsSequence[2]
    item = getattr(frame if group in frame else ds.SharedFunctionalGroupsSequence[0], group)[0]
    if value is None:
        delattr(item, keyword)
    else:
        setattr(item, keyword, value)
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_input_volume(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: cannot read the multi-frame image ({told})") and "\n" not in message


def test_a_compressed_multiframe_file_whose_header_gives_another_size_is_refused(hcc_006, tmp_path):
    """As for single-frame slices (`test_io_dicom.py`): its frames compressed as JPEG-LS and its header's
    Columns made 1024, GDCM ended the whole program when the first decoder failed (SIGABRT, no message)."""
    files, _ = hcc_006
    path = multiframe_file(files[:8], tmp_path / "enhanced" / "ct.dcm")
    ds = pydicom.dcmread(path)
    ds.compress(pydicom.uid.JPEGLSLossless, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=False)
    read_input_volume(path)  # whole, it reads
    ds.Columns = 1024
    ds.save_as(path, enforce_file_format=False)
    assert refusal_in_a_process_of_its_own(path) == (
        f"{path}: its header gives its image 512 x 1024 pixels (Rows x Columns), but its compressed image holds "
        f"512 x 512: the header is damaged. Export the series again.")
