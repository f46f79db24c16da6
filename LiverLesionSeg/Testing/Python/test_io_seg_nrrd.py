"""Slicer segmentation files read by their segments' names: files written by Slicer's own
`vtkMRMLSegmentationStorageNode` (the `slicer-core` wheel) from a real case's reference masks, as a
reader saves a corrected segmentation: overlapping segments in two layers, an extent cropped to the
segments, segments renamed and added; and what cannot be placed on the CT refused in one line."""

from __future__ import annotations

import logging

import nrrd
import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")

import slicer_logic_cases as cases  # noqa: E402
from LiverLesionSegLib import mrml  # noqa: E402
from LiverLesionSegLib.cli import main  # noqa: E402
from LiverLesionSegLib.errors import GeometryError, InputError  # noqa: E402
from LiverLesionSegLib.io.cases import (find_cases, load_case, read_segmentation,  # noqa: E402
                                         read_segmentations)
from LiverLesionSegLib.io.write import write_image  # noqa: E402
from LiverLesionSegLib.lesions import lesion_table  # noqa: E402
from LiverLesionSegLib.segments import LESION, LIVER  # noqa: E402

FIRST_SLICE, SLICES = 80, 32  # 3Dircadb1.17: both lesions lie on slices 78-113


@pytest.fixture(scope="module")
def case(data_dir):
    full = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    return {name: cases.crop_slices(volume, FIRST_SLICE, SLICES)
            for name, volume in (("ct", full.ct), ("liver", full.liver), ("lesion", full.lesion))}


@pytest.fixture
def scene_and_nodes(case):
    """A scene with the CT and a segmentation of it as this module makes it: "Liver" holding its lesions."""
    scene = slicer.vtkMRMLScene()
    volume_node = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation_node = mrml.new_segmentation_node(scene, "corrected")
    liver = case["liver"].with_array(((case["liver"].array > 0) | (case["lesion"].array > 0)).astype(np.uint8))
    mrml.fill_segmentation_node(segmentation_node, volume_node, liver, case["lesion"])
    return scene, segmentation_node, liver


def save(scene, segmentation_node, path, crop: bool = False):
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    storage.SetCropToMinimumExtent(crop)
    assert storage.WriteData(segmentation_node)
    return path


@pytest.mark.parametrize("crop", [False, True], ids=["whole extent", "cropped to the segments"])
def test_a_segmentation_saved_by_slicer_reads_back_voxel_for_voxel(case, scene_and_nodes, tmp_path, crop):
    scene, segmentation_node, liver = scene_and_nodes
    path = save(scene, segmentation_node, tmp_path / "corrected.seg.nrrd", crop)
    data, header = nrrd.read(str(path))
    assert data.ndim == 4 and data.shape[0] == 2  # overlapping segments: two layers
    if crop:
        assert data.shape[1:] != case["ct"].shape[::-1]  # the file holds less than the CT's extent
    read_liver, read_lesion = read_segmentation(path, case["ct"])
    assert np.array_equal(read_liver.array, liver.array)
    assert np.array_equal(read_lesion.array, case["lesion"].array)


def test_segments_a_reader_renamed_or_added_count_by_name(case, scene_and_nodes, tmp_path, caplog):
    scene, segmentation_node, liver = scene_and_nodes
    segmentation = segmentation_node.GetSegmentation()
    segmentation.GetSegment(LESION.segment_id).SetName("Tumor 1")
    extra = np.zeros(case["ct"].shape, np.uint8)
    extra[5:8, 200:210, 200:210] = 1  # a lesion the model missed, drawn as a new segment
    vein = np.zeros(case["ct"].shape, np.uint8)
    vein[20:25, 300:320, 100:120] = 1
    for name, mask in (("metastasis 2", extra), ("Portal vein", vein)):
        segment = slicer.vtkSegment()
        segment.SetName(name)
        segment.AddRepresentation(mrml.BINARY_LABELMAP, mrml.oriented_image(case["ct"].with_array(mask)))
        segmentation.AddSegment(segment)
    path = save(scene, segmentation_node, tmp_path / "renamed.seg.nrrd")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_liver, read_lesion = read_segmentation(path, case["ct"])
    assert "renamed.seg.nrrd: left out 1 segment that is neither liver nor lesion by name: 'Portal vein'" in caplog.text
    expected_lesion = (case["lesion"].array > 0) | (extra > 0)
    assert np.array_equal(read_lesion.array > 0, expected_lesion)
    assert np.array_equal(read_liver.array > 0, (liver.array > 0) | expected_lesion)  # the vein is left out
    assert len(lesion_table(read_lesion)) == len(lesion_table(case["lesion"])) + 1


@pytest.mark.parametrize("liver_name, lesion_name, latin1", [("肝脏", "Läsion 1", False), ("Leber", "Läsion 1", True)],
                         ids=["utf-8, as Slicer writes", "latin-1, as an older tool may"])
def test_segment_names_beyond_ascii_are_read_as_written(case, scene_and_nodes, tmp_path, caplog, liver_name,
                                                        lesion_name, latin1):
    """Slicer writes segment names in UTF-8, and pynrrd dropped every byte beyond ASCII: a liver named
    "肝脏" was read as "" and the file refused ("has no liver segment (segments: , Lsion 1)"); a lesion
    named "Läsion 1", as "Lsion 1", left out."""
    scene, segmentation_node, liver = scene_and_nodes
    segmentation = segmentation_node.GetSegmentation()
    segmentation.GetSegment(LIVER.segment_id).SetName(liver_name)
    segmentation.GetSegment(LESION.segment_id).SetName(lesion_name)
    path = save(scene, segmentation_node, tmp_path / "named.seg.nrrd")
    if latin1:
        path.write_bytes(path.read_bytes().replace(lesion_name.encode(), lesion_name.encode("latin-1"), 1))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_liver, read_lesion = read_segmentation(path, case["ct"])
    assert np.array_equal(read_liver.array, liver.array)
    assert np.array_equal(read_lesion.array, case["lesion"].array)
    assert "left out" not in caplog.text


@pytest.mark.parametrize("named_by_slicer", [True, False], ids=["named by Slicer from the terminology",
                                                                  "names the reader typed"])
def test_segments_named_from_their_terminology_are_read_by_it(case, scene_and_nodes, tmp_path, caplog,
                                                               named_by_slicer):
    """A translated Slicer names a segment from the terminology picked for it (the Estonian "Maks" for
    SCT 10200004 Liver, "Kasvaja" for a Mass, words this tool does not know): the file was refused
    ("has no liver segment"). Read by the terminology now, where Slicer made the name from it; a name
    the reader typed is read as typed, its terminology may be left from before (a "Liver lesion"
    renamed "Abscess" keeps its Mass code)."""
    scene, segmentation_node, liver = scene_and_nodes
    segmentation = segmentation_node.GetSegmentation()
    for spec, name in ((LIVER, "Maks"), (LESION, "Kasvaja")):
        segment = segmentation.GetSegment(spec.segment_id)
        segment.SetName(name)
        segment.SetNameAutoGenerated(named_by_slicer)
    path = save(scene, segmentation_node, tmp_path / "named.seg.nrrd")
    if not named_by_slicer:
        with pytest.raises(InputError, match=r"named\.seg\.nrrd: has no liver segment \(segments: 'Maks', 'Kasvaja'\)"):
            read_segmentation(path, case["ct"])
        return
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_liver, read_lesion = read_segmentation(path, case["ct"])
    assert np.array_equal(read_liver.array, liver.array)
    assert np.array_equal(read_lesion.array, case["lesion"].array)
    assert "left out" not in caplog.text


@pytest.mark.parametrize("tags, meaning", [
    (f"Segmentation.Status:inprogress|TerminologyEntry:{LESION.terminology}|", "lesion"),
    (f"TerminologyEntry:{LIVER.terminology}", "liver"),
    ("TerminologyEntry:Segmentation category and type - 3D Slicer General Anatomy list~SRT^T-D000A^Anatomical "
     "Structure~SRT^T-62000^Liver~^^~Anatomic codes - DICOM master list~^^~^^|", "liver"),  # Slicer 4's codes
    ("TerminologyEntry:Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~"
     "SCT^85756007^Tissue~^^~Anatomic codes - DICOM master list~^^~^^|", None),  # a new segment's default
    ("TerminologyEntry:Segmentation category", None), ("TerminologyEntry:a~b~^", None), ("", None), ("|:|", None)])
def test_a_segment_terminology_is_read_as_slicer_writes_it(tags, meaning):
    from LiverLesionSegLib.io.seg_nrrd import _terminology_type
    from LiverLesionSegLib.segments import meaning_of_segment

    assert meaning_of_segment("Segment_1", _terminology_type(tags)) == meaning


def test_a_file_of_slicer_before_4_11_one_layer_per_segment(case, scene_and_nodes, tmp_path):
    """No label values nor layers in the header: each segment is a layer of ones."""
    scene, segmentation_node, liver = scene_and_nodes
    data, header = nrrd.read(str(save(scene, segmentation_node, tmp_path / "new.seg.nrrd")))
    old = {key: value for key, value in header.items() if not key.endswith(("_LabelValue", "_Layer"))}
    layers = np.stack([data[0] == int(header["Segment0_LabelValue"]), data[1] == int(header["Segment1_LabelValue"])])
    nrrd.write(str(tmp_path / "old.seg.nrrd"), layers.astype(np.uint8), old)
    read_liver, read_lesion = read_segmentation(tmp_path / "old.seg.nrrd", case["ct"])
    assert np.array_equal(read_liver.array, liver.array)
    assert np.array_equal(read_lesion.array, case["lesion"].array)


def test_measure_reads_a_segmentation_saved_by_slicer(case, scene_and_nodes, tmp_path, capsys):
    scene, segmentation_node, _ = scene_and_nodes
    path = save(scene, segmentation_node, tmp_path / "corrected.seg.nrrd", crop=True)
    write_image(tmp_path / "ct.nrrd", case["ct"])
    assert main(["measure", str(tmp_path / "ct.nrrd"), str(path), "--lesions", str(tmp_path / "t.csv"),
                 "--progress", "none"]) == 0
    expected = lesion_table(case["lesion"], case["ct"])
    assert f"Lesions: {len(expected)}" in capsys.readouterr().out


def test_a_segmentation_of_two_layers_given_as_the_ct_is_named(scene_and_nodes, tmp_path, capsys):
    """Found by `tools/damage_inputs.py --kind scene` (seed 25025, a scene whose CT pointed at its
    segmentation's file): a Slicer segmentation of overlapping segments given where the CT belongs was
    told as "a vector or colour image (2 components per voxel). Give a grey-scale CT volume"."""
    scene, segmentation_node, _ = scene_and_nodes
    path = save(scene, segmentation_node, tmp_path / "corrected.seg.nrrd")
    before = sorted(tmp_path.iterdir())
    assert main(["segment", str(path), "-o", str(tmp_path / "out.seg.nrrd"), "--progress", "none"]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"liverlesionseg: error: {path}: is a 3D Slicer segmentation (its segments in 2 layers), not a "
                     "CT image. Give the CT image itself (a segmentation goes to measure, evaluate or train as the "
                     "reference).")
    assert sorted(tmp_path.iterdir()) == before


def test_a_training_case_with_a_slicer_segmentation_as_its_labels(case, scene_and_nodes, tmp_path):
    scene, segmentation_node, liver = scene_and_nodes
    folder = tmp_path / "corrected-case"
    folder.mkdir()
    write_image(folder / "image.nrrd", case["ct"])
    save(scene, segmentation_node, folder / "labels.seg.nrrd", crop=True)
    refs = find_cases([tmp_path])
    assert [ref.name for ref in refs] == ["corrected-case"]
    loaded = load_case(refs[0])
    assert np.array_equal(loaded.liver.array, liver.array) and np.array_equal(loaded.lesion.array, case["lesion"].array)


def test_lesion_segments_alone_are_read_where_the_liver_may_be_missing(case, scene_and_nodes, tmp_path):
    """A reader who segmented the lesions only (`measure`); training and evaluation still need the liver."""
    scene, segmentation_node, _ = scene_and_nodes
    segmentation_node.GetSegmentation().RemoveSegment(LIVER.segment_id)
    path = save(scene, segmentation_node, tmp_path / "lesions.seg.nrrd")
    liver, lesion = read_segmentations([path], case["ct"], require_liver=False)
    assert liver is None and np.array_equal(lesion.array, case["lesion"].array) and lesion.array.any()
    with pytest.raises(InputError, match=r"lesions\.seg\.nrrd: has no liver segment \(segments: 'Liver lesion'\)"):
        read_segmentation(path, case["ct"])


# --- refused in one line ------------------------------------------------------------------------------

def test_no_liver_segment_is_named(case, scene_and_nodes, tmp_path):
    scene, segmentation_node, _ = scene_and_nodes
    segmentation_node.GetSegmentation().GetSegment(LIVER.segment_id).SetName("Organ")
    path = save(scene, segmentation_node, tmp_path / "noliver.seg.nrrd")
    with pytest.raises(InputError, match=r"noliver\.seg\.nrrd: has no liver segment \(segments: 'Organ', "
                                         r"'Liver lesion'\)"):
        read_segmentation(path, case["ct"])
    segmentation_node.GetSegmentation().RemoveSegment(LESION.segment_id)
    path = save(scene, segmentation_node, tmp_path / "organ.seg.nrrd")
    with pytest.raises(InputError, match=r"organ\.seg\.nrrd: has neither a liver nor a lesion segment \(segments: "
                                         r"'Organ'\)"):
        read_segmentations([path], case["ct"], require_liver=False)


def test_a_segmentation_on_another_grid_is_refused(case, scene_and_nodes, tmp_path):
    scene, segmentation_node, _ = scene_and_nodes
    data, header = nrrd.read(str(save(scene, segmentation_node, tmp_path / "s.seg.nrrd")))
    header["space directions"] = np.where(np.isnan(header["space directions"]), np.nan,
                                          header["space directions"] * 2)  # twice the spacing
    nrrd.write(str(tmp_path / "coarse.seg.nrrd"), data, header)
    with pytest.raises(GeometryError, match="coarse.seg.nrrd: the segmentation's voxels .* do not lie on the CT"):
        read_segmentation(tmp_path / "coarse.seg.nrrd", case["ct"])
    header["space directions"] = np.where(np.isnan(header["space directions"]), np.nan,
                                          header["space directions"] / 2)
    header["space origin"] = header["space origin"] + [0, 0, 2000.0]  # far above the CT
    nrrd.write(str(tmp_path / "above.seg.nrrd"), data, header)
    with pytest.raises(GeometryError, match="reaches beyond the CT's volume"):
        read_segmentation(tmp_path / "above.seg.nrrd", case["ct"])


def test_a_damaged_segmentation_file_is_told(case, scene_and_nodes, tmp_path):
    scene, segmentation_node, _ = scene_and_nodes
    path = save(scene, segmentation_node, tmp_path / "cut.seg.nrrd")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.seg\.nrrd: cannot read the segmentation"):
        read_segmentation(path, case["ct"])


def test_a_segmentation_whose_compressed_voxels_fail_their_checksum_is_told_so(case, scene_and_nodes, tmp_path):
    """Found by `tools/damage_inputs.py --kind segnrrd`, seed 36007 (a bit flipped): in zlib's words,
    "Error -3 while decompressing data: incorrect data check", where an image's is told as here."""
    scene, segmentation_node, _ = scene_and_nodes
    data = bytearray(save(scene, segmentation_node, tmp_path / "flipped.seg.nrrd").read_bytes())
    assert data[data.index(b"\n\n") + 2] == 0x1F  # its voxels gzip-compressed, as Slicer saves them
    data[-8] ^= 0x01  # the gzip stream's CRC-32 of its voxels
    (tmp_path / "flipped.seg.nrrd").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"flipped\.seg\.nrrd: cannot read the segmentation \(its compressed voxel "
                                         r"data does not match its own checksum: bytes of it are damaged\)"):
        read_segmentation(tmp_path / "flipped.seg.nrrd", case["ct"])


def test_a_segmentation_whose_voxels_are_cut_short_says_how_many_it_holds(case, scene_and_nodes, tmp_path):
    """Found by `tools/damage_inputs.py --kind segnrrd`: told in pynrrd's words, "Size of the data does
    not equal the product of all the dimensions: 2097152-1221798=875354"."""
    scene, segmentation_node, _ = scene_and_nodes
    data, header = nrrd.read(str(save(scene, segmentation_node, tmp_path / "s.seg.nrrd")))
    header["encoding"] = "raw"
    path = tmp_path / "raw.seg.nrrd"
    nrrd.write(str(path), data, header)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InputError, match=rf"raw\.seg\.nrrd: cannot read the segmentation \(its voxel data holds "
                                         rf"{data.size - 1000} of the {data.size} voxels its header announces\)"):
        read_segmentation(path, case["ct"])


@pytest.mark.parametrize("key, value, told", [
    ("space", "Tumor", "its space 'tumor' is none of left-posterior-superior, right-anterior-superior"),
    ("Segment1_LabelValue", "Tumor", "its Segment1_LabelValue 'Tumor' is not a whole number"),
    ("Segment0_Layer", "nan", "its Segment0_Layer 'nan' is not a whole number"),
    ("Segment0_LabelValue", "7", r"its layer 0 holds voxels of value 1, which no segment's label value names\)"),
    # found changing each header line's value in turn: "lies in layer 1 of 1"
    ("Segment0_Layer", "7", r"segment 'Liver' lies in layer 7, where the file holds layers 0 to 1\)"),
    ("space origin", None, "its header has no space origin, so where its voxels lie cannot be told")])
def test_a_damaged_header_value_is_named(case, scene_and_nodes, tmp_path, key, value, told):
    """Found by `tools/damage_inputs.py --kind segnrrd`: told as Python's words, "('tumor')" (a
    dictionary's missing key) or "invalid literal for int() with base 10: 'Tumor'"; a label value
    that names no voxel left the segment's own voxels out, and the liver was measured empty."""
    scene, segmentation_node, _ = scene_and_nodes
    data, header = nrrd.read(str(save(scene, segmentation_node, tmp_path / "s.seg.nrrd")))
    if value is None:
        del header[key]
    else:
        header[key] = value
    nrrd.write(str(tmp_path / "damaged.seg.nrrd"), data, header)
    with pytest.raises(InputError, match=rf"damaged\.seg\.nrrd: cannot read the segmentation \({told}"):
        read_segmentation(tmp_path / "damaged.seg.nrrd", case["ct"])


@pytest.mark.parametrize("line, told", [
    ("type: XXX", "its type 'XXX' is no NRRD data type"),
    ("#", "its header has no 'sizes' field"),
    ("sizes: 7", r"its header gives 1 size where its dimension is \d"),
    ("dimension: -1", r"its header gives \d sizes where its dimension is -1"),
    ("encoding: XXX", "its encoding 'XXX' is not raw, gzip, bzip2 or ascii"),
    ("# type", "its header has no 'type' field"),
    # damage_inputs --kind segnrrd, seeds 36008 and 36009: pynrrd failed to parse the line, and the file was
    # taken for a label map: "cannot read the image header (… first vector in "Liver" didn't start with '(')"
    ("space origin: Liver", "its header line 'space origin: Liver' cannot be read: Vector should be enclosed by "
                            "parentheses"),
    ("space directions: XXX", "its header line 'space directions: XXX' cannot be read: Vector should be"),
    ("sizes 512 512 8", "its header line 'sizes 512 512 8' cannot be read: it is no 'field: value' line"),
    # seed 41020: "its header line 'space origin:' cannot be read: string index out of range"
    ("space origin: ", "its header line 'space origin' has no value"),
    # found changing each header line's value in turn: Python's "invalid literal for int() with base 10: 'nan'",
    # "could not convert string to float: 'XXX'", and "holds 2097152 of the 6 voxels its header announces"
    ("dimension: nan", "its header line 'dimension: nan' cannot be read: it is not a whole number"),
    ("sizes: XXX", "its header line 'sizes: XXX' cannot be read: it holds a value that is not a number"),
    ("sizes: 1 1 2 3", r"its voxel data holds \d+ voxels, more than the 6 its header's sizes announce")])
def test_a_header_line_pynrrd_keys_on_is_named(case, scene_and_nodes, tmp_path, line, told):
    """pynrrd's KeyError was shown as its key alone: "('XXX')" for a type it does not know, "('sizes')"
    for the sizes line gone; sizes of another dimension (damage_inputs --kind segnrrd, seeds 31005 and
    31008) in its words, "Number of elements in sizes does not match dimension. Dimension: 3, len(sizes): 1"."""
    scene, segmentation_node, _ = scene_and_nodes
    data = save(scene, segmentation_node, tmp_path / "s.seg.nrrd").read_bytes()
    end = data.index(b"\n\n")
    field = line.split(":")[0].lstrip("# ") if ":" in line or line.startswith("# ") else "sizes"
    header = "\n".join(line if row.startswith(f"{field}: ") else row for row in data[:end].decode().split("\n"))
    (tmp_path / "damaged.seg.nrrd").write_bytes(header.encode() + data[end:])
    with pytest.raises(InputError, match=rf"damaged\.seg\.nrrd: cannot read the segmentation \({told}.*\)\. Save "
                                         r"the segmentation again from Slicer"):
        read_segmentation(tmp_path / "damaged.seg.nrrd", case["ct"])
