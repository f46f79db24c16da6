"""Finding and loading cases in every understood layout, and the input volume for segmentation."""

from __future__ import annotations

import json
import logging
import re
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.caveats import label_caveats
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io import dataset_labels
from LiverLesionSegLib.io.cases import CaseRef, find_cases, load_case, read_input_volume, read_segmentation
from LiverLesionSegLib.io.dicomseg import read_seg_case
from LiverLesionSegLib.volume import Volume

LABELLED = ["3Dircadb1.1", "3Dircadb1.17", "3Dircadb1.7", "RadCTTACEomics_0697", "RadCTTACEomics_1211"]


@pytest.fixture(scope="session")
def case_0697(data_dir):
    return read_seg_case(data_dir / "tace/RadCTTACEomics_0697")


@pytest.fixture(scope="session")
def layouts(tmp_path_factory, case_0697, data_dir):
    """One folder holding 0697 in every image layout, and a link to the real 0697 SEG case."""
    root = tmp_path_factory.mktemp("layouts")
    ct, labels = case_0697.ct.to_sitk(), case_0697.ct.with_array(case_0697.label_map()).to_sitk()
    (root / "LiTS batch").mkdir()
    sitk.WriteImage(ct, str(root / "LiTS batch/volume-3.nii"))
    sitk.WriteImage(labels, str(root / "LiTS batch/segmentation-3.nii"))
    sitk.WriteImage(ct, str(root / "LiTS batch/volume-4.nii"))  # a test volume: no segmentation
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (root / "Task03_Liver" / sub).mkdir(parents=True)
    sitk.WriteImage(ct, str(root / "Task03_Liver/imagesTr/liver_7.nii.gz"), useCompression=True)
    sitk.WriteImage(labels, str(root / "Task03_Liver/labelsTr/liver_7.nii.gz"), useCompression=True)
    (root / "Task03_Liver/imagesTr/._liver_7.nii.gz").write_bytes(b"\0\5\26\7")  # macOS junk, as shipped
    shutil.copy(root / "Task03_Liver/imagesTr/liver_7.nii.gz", root / "Task03_Liver/imagesTs/liver_99.nii.gz")
    (root / "Task03_Liver/dataset.json").write_text(  # as the Decathlon ships it: value -> name
        '{"name": "Liver", "labels": {"0": "background", "1": "liver", "2": "cancer"}, "numTraining": 1}')
    (root / "scene export").mkdir()
    sitk.WriteImage(ct, str(root / "scene export/image.nrrd"))
    sitk.WriteImage(labels, str(root / "scene export/labels.nrrd"))
    os.symlink(data_dir / "tace/RadCTTACEomics_0697", root / "RadCTTACEomics_0697")
    return root


def assert_same_as_0697(case, case_0697):
    assert case.ct.same_grid(case_0697.ct)
    np.testing.assert_array_equal(case.ct.array, case_0697.ct.array)
    np.testing.assert_array_equal(case.lesion.array, case_0697.lesion.array)
    np.testing.assert_array_equal(case.liver.array, case_0697.liver.array | case_0697.lesion.array)


# --- the real data -----------------------------------------------------------------------------

def test_whole_data_dir_gives_the_labelled_cases_and_notes_hcc_006(data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        refs = find_cases(data_dir)
    assert sorted(ref.name for ref in refs) == sorted(LABELLED)
    kinds = {ref.name: ref.kind for ref in refs}
    assert {kinds[n] for n in LABELLED[:3]} == {"ircadb"} and {kinds[n] for n in LABELLED[3:]} == {"dicom-seg"}
    notes = [r.getMessage() for r in caplog.records if "HCC_006" in r.getMessage()]
    assert len(notes) == 1 and "left out" in notes[0] and "no labels" in notes[0]


def test_single_case_folders(data_dir):
    assert find_cases(data_dir / "ircadb/3Dircadb1.7") == [
        CaseRef("3Dircadb1.7", "ircadb", (data_dir / "ircadb/3Dircadb1.7",))]
    assert find_cases([data_dir / "tace/RadCTTACEomics_1211"]) == [
        CaseRef("RadCTTACEomics_1211", "dicom-seg", (data_dir / "tace/RadCTTACEomics_1211",))]


def test_the_same_case_twice_is_found_once(data_dir):
    refs = find_cases([data_dir / "ircadb", data_dir / "ircadb/3Dircadb1.7"])
    assert sorted(ref.name for ref in refs) == ["3Dircadb1.1", "3Dircadb1.17", "3Dircadb1.7"]


def test_load_ircadb_case(data_dir, cases_json):
    case = load_case(CaseRef("3Dircadb1.17", "ircadb", (data_dir / "ircadb/3Dircadb1.17",)))
    assert case.name == "3Dircadb1.17"
    assert int(case.liver.array.sum()) == cases_json["3Dircadb1.17"]["liver_voxels"]
    assert int(case.lesion.array.sum()) == cases_json["3Dircadb1.17"]["lesion_voxels"]


# --- image layouts written from 0697 -----------------------------------------------------------

def test_every_layout_in_one_folder(layouts, caplog):
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        refs = find_cases(layouts)
    assert sorted((ref.name, ref.kind) for ref in refs) == [
        ("RadCTTACEomics_0697", "dicom-seg"), ("lits-3", "image-pair"), ("liver_7", "image-pair"),
        ("scene export", "image-pair")]
    assert "volume-4.nii" in caplog.text and "imagesTs" in caplog.text


@pytest.mark.parametrize("given", ["LiTS batch", "LiTS batch/volume-3.nii", "LiTS batch/segmentation-3.nii"])
def test_lits_pair(layouts, case_0697, given):
    refs = find_cases(layouts / given)
    assert [ref.name for ref in refs if ref.name.startswith("lits")] == ["lits-3"]
    ref = next(ref for ref in refs if ref.name == "lits-3")
    assert ref.paths == (layouts / "LiTS batch/volume-3.nii", layouts / "LiTS batch/segmentation-3.nii")
    case = load_case(ref)
    assert case.name == "lits-3"
    assert_same_as_0697(case, case_0697)


def found_liver_alone(given: Path, case_0697, caplog, collection: str) -> list[CaseRef]:
    """The cases found at `given`, a collection known by its label maps' names ("CT-ORG dataset (its layout)"),
    the first read: 0697's liver alone, its lesions not segmented, as the log says once per dataset."""
    dataset_labels._tell_of_no_lesion_label.cache_clear()
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        refs = find_cases(given)
        case = load_case(refs[0])
    assert not case.lesions_segmented and not case.lesion.array.any()
    np.testing.assert_array_equal(case.liver.array, case_0697.liver.array | case_0697.lesion.array)
    assert f"belongs to the {collection}: its label maps name a liver but no lesion" in caplog.text
    return refs


@pytest.fixture(scope="module")
def ct_org(tmp_path_factory, case_0697):
    """0697 as CT-ORG ships a case: `volume-5.nii.gz` + `labels-5.nii.gz`, whose labels are 1 liver (the
    lesions within it), 2 bladder, 3 lungs, 4 kidneys (by its README); here a block of bladder and one of
    kidney away from the liver; and `volume-6.nii.gz` without labels (a test volume)."""
    root = tmp_path_factory.mktemp("ct-org") / "OrganSegmentations"
    root.mkdir()
    labels = (case_0697.label_map() > 0).astype(np.uint8)
    assert not labels[40:44].any() and not labels[20:24, 300:320, 380:400].any()  # away from the liver
    labels[40:44, 400:420, 240:260] = 2
    labels[20:24, 300:320, 380:400] = 4
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "volume-5.nii.gz"), useCompression=True)
    sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(root / "labels-5.nii.gz"), useCompression=True)
    shutil.copy(root / "volume-5.nii.gz", root / "volume-6.nii.gz")
    return root


@pytest.mark.parametrize("given", ["", "volume-5.nii.gz", "labels-5.nii.gz"])
def test_a_ct_org_case_trains_its_liver_alone_and_its_bladder_is_no_lesion(ct_org, case_0697, given, caplog):
    """CT-ORG (140 CTs with their livers labelled, most of them LiTS's) was left out case by case, "no
    segmentation-5 beside it"; read as a LiTS pair, its bladder (2) would have been learned as liver lesion."""
    refs = found_liver_alone(ct_org / given, case_0697, caplog, "CT-ORG dataset (labels-N beside volume-N)")
    assert refs == [CaseRef("ct-org-5", "image-pair", (ct_org / "volume-5.nii.gz", ct_org / "labels-5.nii.gz"))]
    messages = [r.getMessage() for r in caplog.records]
    assert any("label(s) 2, 4, of neither liver nor lesion by CT-ORG's list of labels, read as background" in m
               for m in messages)
    if not given:
        assert any(f"left out {ct_org / 'volume-6.nii.gz'}: no segmentation-6 (or CT-ORG's labels-6) beside it" in m
                   for m in messages)


def test_a_ct_org_label_map_with_a_label_beyond_its_list_is_refused(ct_org, tmp_path):
    folder = tmp_path / "ct-org"
    shutil.copytree(ct_org, folder)
    labels = sitk.ReadImage(str(folder / "labels-5.nii.gz"))
    array = sitk.GetArrayFromImage(labels)
    array[0, :4, :4] = 9
    spoiled = sitk.GetImageFromArray(array)
    spoiled.CopyInformation(labels)
    sitk.WriteImage(spoiled, str(folder / "labels-5.nii.gz"))
    with pytest.raises(InputError) as exc:
        load_case(find_cases(folder)[0])
    assert str(exc.value) == (f"{folder / 'labels-5.nii.gz'}: the label map holds label(s) 9, which CT-ORG's list of "
                              "labels does not name. Give CT-ORG's label map as it ships (labels 0 to 6), or name "
                              "the label in a dataset.json beside it.")


@pytest.mark.parametrize("label", ["spleen", "mirrored liver"])
def test_a_label_read_as_the_liver_that_is_unlike_one_is_told(case_0697, tmp_path, caplog, label):
    """A spleen's label map given without the dataset.json that names its values (0/1 read as background and
    liver), or a case whose image and labels are stored mirrored: read as a liver and trained on without a
    word. Told now; 0697 as it is (927 mL, on the right) is not."""
    labels = np.zeros(case_0697.ct.shape, np.uint8)
    if label == "spleen":  # 136 mL on the patient's left, the whole of it within the scan
        labels[18:28, 200:260, 330:400] = 1
    else:
        labels = case_0697.label_map()[:, :, ::-1].copy()
    folder = tmp_path / "case"
    folder.mkdir()
    sitk.WriteImage(case_0697.ct.to_sitk(), str(folder / "image.nii.gz"))
    sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(folder / "labels.nii.gz"))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        load_case(find_cases(folder)[0])
    told = [r.getMessage() for r in caplog.records if "what is read as the liver" in r.getMessage()]
    size = "holds 136 mL, the whole of it within the scan (an adult's liver holds about 1000 to 2500 mL) and "
    assert told == [f"{folder / 'labels.nii.gz'}: what is read as the liver {size if label == 'spleen' else ''}lies "
                    "on the patient's left: it may be another organ's label (name the label map's values in a "
                    "dataset.json beside it) or the image may be stored mirrored; check the case before training on it"]
    assert label_caveats(case_0697) == []


@pytest.fixture(scope="module")
def abdomenct_1k(tmp_path_factory, case_0697):
    """0697 as AbdomenCT-1K ships its cases: AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz + Mask/Case_00001.nii.gz,
    labelled 1 liver, 2 kidney, 3 spleen, 4 pancreas (here a kidney and a spleen away from the liver); an image of
    another part without a mask."""
    root = tmp_path_factory.mktemp("abdomenct-1k") / "AbdomenCT-1K"
    for sub in ("AbdomenCT-1K-ImagePart1", "AbdomenCT-1K-ImagePart2", "Mask"):
        (root / sub).mkdir(parents=True)
    labels = (case_0697.label_map() > 0).astype(np.uint8)
    labels[40:44, 400:420, 240:260] = 2
    labels[40:44, 300:320, 380:400] = 3
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz"),
                    useCompression=True)
    sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(root / "Mask/Case_00001.nii.gz"),
                    useCompression=True)
    shutil.copy(root / "AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz",
                root / "AbdomenCT-1K-ImagePart2/Case_00402_0000.nii.gz")
    return root


@pytest.mark.parametrize("given", ["", "AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz", "Mask/Case_00001.nii.gz"])
def test_an_abdomenct_1k_case_trains_its_liver_1_alone(abdomenct_1k, case_0697, given, caplog):
    """AbdomenCT-1K's 1000 labelled CTs were refused ("holds no labelled case"); read as 0/1/2, its kidneys
    would have been learned as liver lesions and its spleens refused."""
    refs = found_liver_alone(abdomenct_1k / given, case_0697, caplog,
                             "AbdomenCT-1K dataset (Mask/Case_N beside AbdomenCT-1K-ImagePart*/Case_N_0000)")
    image = abdomenct_1k / "AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz"
    assert refs == [CaseRef("Case_00001", "image-pair", (image, abdomenct_1k / "Mask/Case_00001.nii.gz"))]
    if not given:
        assert (f"left out 1 AbdomenCT-1K image(s) with no mask in {abdomenct_1k / 'Mask'}, e.g. Case_00402"
                in caplog.text)
    with pytest.raises(InputError, match="the AbdomenCT-1K pair of this case is incomplete"):
        find_cases(abdomenct_1k / "AbdomenCT-1K-ImagePart2/Case_00402_0000.nii.gz")


@pytest.mark.parametrize("label_map, beside, liver", [("Mask/Case_00001.nii.gz", "AbdomenCT-1K-ImagePart1", 1),
                                                      ("label/label0001.nii.gz", "img", 6),
                                                      ("labels/FLARE22_Tr_0001.nii.gz", "images", 1)])
def test_a_label_map_named_as_a_collections_is_read_by_its_list_only_where_it_lies_as_shipped(tmp_path, label_map,
                                                                                              beside, liver):
    """One's own 0/1/2 label map saved as mask/Case_00001.nii.gz (measured, or given to evaluate) would have
    had its lesions read as AbdomenCT-1K's kidneys, that is background: a collection's list is read only where
    its label maps lie as the collection ships them (beside its image folders)."""
    path = tmp_path / label_map
    path.parent.mkdir()
    path.write_bytes(b"")
    assert dataset_labels.label_roles_for(path) is None
    (tmp_path / beside).mkdir()
    roles = dataset_labels.label_roles_for(path)
    assert roles[liver] == "liver" and [value for value, role in roles.items() if role] == [liver]


@pytest.fixture(scope="module")
def flare22(tmp_path_factory, case_0697):
    """0697 as FLARE22 ships its labelled cases: FLARE22Train/images/FLARE22_Tr_0001_0000.nii.gz +
    labels/FLARE22_Tr_0001.nii.gz, 13 organs labelled, the liver 1 (here a right kidney, 2, and a left, 13)."""
    root = tmp_path_factory.mktemp("flare22") / "FLARE22Train"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    labels = (case_0697.label_map() > 0).astype(np.uint8)
    labels[40:44, 400:420, 240:260] = 2
    labels[40:44, 300:320, 380:400] = 13
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "images/FLARE22_Tr_0001_0000.nii.gz"), useCompression=True)
    sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(root / "labels/FLARE22_Tr_0001.nii.gz"),
                    useCompression=True)
    return root


@pytest.mark.parametrize("given", ["", "images/FLARE22_Tr_0001_0000.nii.gz", "labels/FLARE22_Tr_0001.nii.gz"])
def test_a_flare22_case_trains_its_liver_1_alone(flare22, case_0697, given, caplog):
    """FLARE22's 50 labelled CTs, shipped as images/ + labels/ without a dataset.json, were refused ("holds no
    labelled case"); read as 0/1/2, its right kidneys would have been learned as liver lesions."""
    refs = found_liver_alone(flare22 / given, case_0697, caplog,
                             "FLARE22 dataset (labels/FLARE22_Tr_N beside images/FLARE22_Tr_N_0000)")
    assert refs == [CaseRef("FLARE22_Tr_0001", "image-pair", (flare22 / "images/FLARE22_Tr_0001_0000.nii.gz",
                                                              flare22 / "labels/FLARE22_Tr_0001.nii.gz"))]


def test_images_and_labels_folders_take_the_dataset_json_beside_them(flare22, tmp_path):
    """A dataset shipped as images/ + labels/ names its values in the dataset.json beside the two folders, as
    nnU-Net's beside imagesTr/ + labelsTr/; a labels/ folder with no images/ beside it (predictions saved
    inside a dataset) keeps its own values."""
    root = shutil.copytree(flare22, tmp_path / "Dataset")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumour": 2}}))
    assert dataset_labels.dataset_json_of(root / "labels/FLARE22_Tr_0001.nii.gz") == root / "dataset.json"
    (root / "predictions" / "labels").mkdir(parents=True)
    assert dataset_labels.dataset_json_of(root / "predictions/labels/FLARE22_Tr_0001.nii.gz") is None


@pytest.fixture(scope="module")
def btcv(tmp_path_factory, case_0697):
    """0697 as BTCV ships its cases: RawData/Training/img/img0001.nii.gz + label/label0001.nii.gz, 13 organs
    labelled, the liver 6 (here with a spleen, 1, and a kidney, 2, away from it); a test image without labels."""
    root = tmp_path_factory.mktemp("btcv") / "RawData"
    for sub in ("Training/img", "Training/label", "Testing/img"):
        (root / sub).mkdir(parents=True)
    labels = np.where(case_0697.label_map() > 0, 6, 0).astype(np.uint8)
    assert not labels[40:44].any()
    labels[40:44, 400:420, 240:260] = 1
    labels[40:44, 300:320, 380:400] = 2
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "Training/img/img0001.nii.gz"), useCompression=True)
    sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(root / "Training/label/label0001.nii.gz"),
                    useCompression=True)
    shutil.copy(root / "Training/img/img0001.nii.gz", root / "Testing/img/img0061.nii.gz")
    return root


@pytest.mark.parametrize("given", ["", "Training/img/img0001.nii.gz", "Training/label/label0001.nii.gz"])
def test_a_btcv_case_trains_its_liver_6_alone(btcv, case_0697, given, caplog):
    """BTCV's 30 training CTs were refused ("holds no labelled case"); its label maps hold 13 organs, the
    liver 6, which read as 0/1/2 would have been refused (or its spleen, 1, taken for the liver)."""
    refs = found_liver_alone(btcv / given, case_0697, caplog, "BTCV dataset (label/labelN beside img/imgN)")
    assert refs == [CaseRef("btcv-0001", "image-pair", (btcv / "Training/img/img0001.nii.gz",
                                                         btcv / "Training/label/label0001.nii.gz"))]
    with pytest.raises(InputError, match="the BTCV pair of case 0061 is incomplete"):
        find_cases(btcv / "Testing/img/img0061.nii.gz")


def test_a_kits_case_is_refused_as_it_labels_no_liver(tmp_path, case_0697):
    """KiTS (kidney tumours: case_00000/imaging.nii.gz + segmentation.nii.gz, 1 kidney, 2 its tumour, 3 cyst)
    was read as an image + labels pair by its file names, its kidneys learned as livers and their tumours as
    liver lesions. Its label maps name no liver: refused in one line; a dataset.json beside it still rules."""
    case = tmp_path / "kits19" / "data" / "case_00000"
    case.mkdir(parents=True)
    sitk.WriteImage(case_0697.ct.to_sitk(), str(case / "imaging.nii.gz"))
    sitk.WriteImage(case_0697.ct.with_array(case_0697.label_map()).to_sitk(), str(case / "segmentation.nii.gz"))
    (ref,) = find_cases(tmp_path / "kits19")
    with pytest.raises(InputError) as exc:
        load_case(ref)
    assert str(exc.value) == (f"{case / 'segmentation.nii.gz'}: KiTS's list of labels names no label of the liver: the "
                              "liver is not segmented, and a case needs it. Give a dataset whose label maps hold the "
                              "liver.")
    (case / "dataset.json").write_text('{"labels": {"background": 0, "liver": 1, "tumour": 2}}')  # not KiTS after all
    assert_same_as_0697(load_case(ref), case_0697)


@pytest.fixture(scope="module")
def sliver(tmp_path_factory, case_0697):
    """0697 as SLIVER07 ships its training cases: liver-orig001.mhd + liver-seg001.mhd (MetaImage, the
    liver with its tumours as 1), and liver-orig021.mhd without a segmentation (a test image)."""
    root = tmp_path_factory.mktemp("sliver") / "training-part1"
    root.mkdir()
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "liver-orig001.mhd"))
    liver = (case_0697.label_map() > 0).astype(np.uint8)
    sitk.WriteImage(case_0697.ct.with_array(liver).to_sitk(), str(root / "liver-seg001.mhd"))
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / "liver-orig021.mhd"))
    return root


@pytest.mark.parametrize("given", ["", "liver-orig001.mhd", "liver-seg001.mhd"])
def test_a_sliver07_case_trains_its_liver_alone(sliver, case_0697, given, caplog):
    """SLIVER07's 20 training CTs were refused ("holds no labelled case"; a file alone, "a single file is a
    case only as ..."). Its livers hold their tumours, so their lesions count as not segmented."""
    refs = found_liver_alone(sliver / given, case_0697, caplog, "SLIVER07 dataset (liver-segN beside liver-origN)")
    assert refs == [CaseRef("sliver-001", "image-pair", (sliver / "liver-orig001.mhd", sliver / "liver-seg001.mhd"))]
    if not given:
        assert f"left out {sliver / 'liver-orig021.mhd'}: no liver-seg021.mhd beside it" in caplog.text
    else:
        with pytest.raises(InputError, match="the SLIVER07 pair of case 021 is incomplete"):
            find_cases(sliver / "liver-orig021.mhd")


@pytest.mark.parametrize("given", ["Task03_Liver", "Task03_Liver/imagesTr/liver_7.nii.gz"])
def test_decathlon_task(layouts, case_0697, given):
    (ref,) = find_cases(layouts / given)
    assert ref.name == "liver_7" and ref.kind == "image-pair"
    assert_same_as_0697(load_case(ref), case_0697)


@pytest.fixture(scope="module")
def nnunet_dataset(tmp_path_factory, case_0697):
    """0697 as nnU-Net's datasets hold a case: its CT as channel 0000 of imagesTr, its labels without
    the channel, a dataset.json beside them; a second channel of it and a test image besides."""
    root = tmp_path_factory.mktemp("nnunet") / "Dataset003_Liver"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (root / sub).mkdir(parents=True)
    ct, labels = case_0697.ct.to_sitk(), case_0697.ct.with_array(case_0697.label_map()).to_sitk()
    sitk.WriteImage(ct, str(root / "imagesTr/liver_7_0000.nii.gz"), useCompression=True)
    sitk.WriteImage(ct, str(root / "imagesTr/liver_7_0001.nii.gz"), useCompression=True)
    sitk.WriteImage(labels, str(root / "labelsTr/liver_7.nii.gz"), useCompression=True)
    shutil.copy(root / "imagesTr/liver_7_0000.nii.gz", root / "imagesTs/liver_99_0000.nii.gz")
    (root / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, '
                                       '"tumor": 2}, "numTraining": 1, "file_ending": ".nii.gz"}')
    return root


@pytest.mark.parametrize("given", [".", "imagesTr/liver_7_0000.nii.gz", "labelsTr/liver_7.nii.gz"])
def test_an_nnunet_dataset(nnunet_dataset, case_0697, given, caplog):
    """nnU-Net's datasets (LiTS and the Decathlon's liver task as most researchers hold them now) give
    their images a channel suffix, CASE_0000, that their label maps lack: each image was left out
    ("no labelsTr/liver_7_0000.nii.gz") and the folder refused as holding no labelled case."""
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        (ref,) = find_cases(nnunet_dataset / given)
    assert ref == CaseRef("liver_7", "image-pair", (nnunet_dataset / "imagesTr/liver_7_0000.nii.gz",
                                                    nnunet_dataset / "labelsTr/liver_7.nii.gz"))
    assert_same_as_0697(load_case(ref), case_0697)
    if given == ".":
        assert "liver_7_0001.nii.gz: channel 0001 of case liver_7" in caplog.text


def _dataset(root: Path, case_0697, labels_json: str, values: dict, case: str = "liver_7") -> Path:
    """0697 as a one-case nnU-Net dataset whose dataset.json has `labels_json`; its label map holds
    values["liver"] and values["lesion"], and where `values` says so a 'kidney' block away from the
    liver (values["kidney"]) with a 'tumour' in it (values["lesion"])."""
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    array = np.zeros(case_0697.ct.shape, np.uint8)
    array[case_0697.liver.array > 0] = values["liver"]
    array[case_0697.lesion.array > 0] = values["lesion"]
    if "kidney" in values:
        liver_columns = np.nonzero(case_0697.liver.array.any(axis=(0, 1)))[0]
        far = slice(liver_columns.max() + 20, liver_columns.max() + 60)  # beyond the liver, across the image
        array[10:20, 200:240, far] = values["kidney"]
        array[14:16, 210:215, far.start + 5:far.start + 10] = values["lesion"]
    sitk.WriteImage(case_0697.ct.to_sitk(), str(root / f"imagesTr/{case}_0000.nii.gz"))
    sitk.WriteImage(case_0697.ct.with_array(array).to_sitk(), str(root / f"labelsTr/{case}.nii.gz"))
    (root / "dataset.json").write_text(labels_json)
    return root


@pytest.mark.parametrize("labels_json, values", [
    ('{"labels": {"background": 0, "liver": 1, "kidney": 2, "spleen": 3, "tumor": 4}}',
     {"liver": 1, "kidney": 2, "lesion": 4}),  # several organs, a tumour label for any organ's tumours
    ('{"labels": {"background": 0, "tumour": 1, "liver": 2}}', {"liver": 2, "lesion": 1}),  # the other order
    ('{"labels": {"background": 0, "liver": [1, 2], "tumor": 2}}', {"liver": 1, "lesion": 2}),  # nnU-Net's regions
    ('{"labels": {"0": "background", "1": "Leber", "2": "Lebermetastase", "3": "Milz"}}',
     {"liver": 1, "lesion": 2, "kidney": 3}),  # the Decathlon's form, German names
], ids=["organs", "swapped", "regions", "decathlon"])
def test_a_datasets_label_names_say_which_values_are_liver_and_lesion(tmp_path, case_0697, labels_json, values):
    """A dataset whose dataset.json names its labels otherwise than 1 liver, 2 lesion: a multi-organ
    dataset was refused for its labels beyond 2 (or, with a kidney labelled 2, had it read as lesion),
    and liver and tumour swapped were read swapped. Each value is read by its name; other organs are
    background, and so is a tumour that touches no liver."""
    root = _dataset(tmp_path / "Dataset009_Organs", case_0697, labels_json, values)
    (ref,) = find_cases(root)
    case = load_case(ref)
    assert_same_as_0697(case, case_0697)
    assert case.lesions_segmented


@pytest.mark.parametrize("where", ["cases", "case"])
def test_a_dataset_json_beside_case_folders_names_their_labels(tmp_path, case_0697, where, capsys):
    """A dataset of organs turned into case folders (image + labels), or one of livers labelled without their
    lesions (0/1 maps, which read as livers free of lesions), says so in a dataset.json in the folder of its
    cases or in a case's own folder, as nnU-Net's: before, it was read only beside a labelsTr folder, and the
    organs' label map was refused."""
    from LiverLesionSegLib.cli import main

    labels = (case_0697.label_map() > 0).astype(np.uint8)
    assert not labels[40:44].any()
    labels[40:44, 400:420, 240:260] = 3  # a spleen, away from the liver
    for name in ("a", "b"):
        (tmp_path / "cases" / name).mkdir(parents=True)
        sitk.WriteImage(case_0697.ct.to_sitk(), str(tmp_path / "cases" / name / "image.nii.gz"))
        sitk.WriteImage(case_0697.ct.with_array(labels).to_sitk(), str(tmp_path / "cases" / name / "labels.nii.gz"))
    code = main(["train", str(tmp_path / "cases"), "--out", str(tmp_path / "refused"), "--progress", "none"])
    assert code == 3 and 'name the dataset\'s labels in a dataset.json in its folder or the folder of its cases, ' \
        'as nnU-Net\'s {"labels": {"background": 0, "liver": 1, ...}}.' in capsys.readouterr().err
    folder = tmp_path / "cases" / ("a" if where == "case" else "")
    (folder / "dataset.json").write_text('{"labels": {"background": 0, "liver": 1, "spleen": 3}}')
    case = load_case(find_cases(tmp_path / "cases" / "a")[0])
    np.testing.assert_array_equal(case.liver.array, case_0697.liver.array | case_0697.lesion.array)
    assert not case.lesion.array.any() and not case.lesions_segmented  # a liver named, no lesion: not segmented


def test_predictions_saved_inside_a_datasets_folder_keep_this_tools_values(tmp_path, case_0697):
    """A dataset.json names the label maps of its own cases (labelsTr/, a case folder's labels.nii.gz, the
    files beside it), not this tool's predictions saved in a folder within the dataset (`evaluate
    --predictions Dataset009/predictions`): their 2 is a lesion, not the dataset's kidney."""
    (tmp_path / "Dataset009" / "predictions").mkdir(parents=True)
    (tmp_path / "Dataset009" / "dataset.json").write_text('{"labels": {"background": 0, "liver": 1, "kidney": 2}}')
    prediction = tmp_path / "Dataset009" / "predictions" / "liver_7.nii.gz"
    sitk.WriteImage(case_0697.ct.with_array(case_0697.label_map()).to_sitk(), str(prediction))
    liver, lesion = read_segmentation(prediction, case_0697.ct)
    np.testing.assert_array_equal(lesion.array, case_0697.lesion.array)
    np.testing.assert_array_equal(liver.array, case_0697.liver.array | case_0697.lesion.array)


@pytest.mark.parametrize("labels_json, values, told", [
    # FLARE's and BTCV's label maps hold a dozen organs: without their names, the refusal says where to give them
    (None, {"liver": 1, "lesion": 2, "kidney": 13},
     "the label map holds label(s) 13 besides 0 background, 1 liver, 2 lesion. Give a label map with 0, 1 and 2 "
     "only, or name the dataset's labels in a dataset.json beside its labelsTr folder, as nnU-Net's "
     '{"labels": {"background": 0, "liver": 1, ...}}.'),
    ('{"labels": {"background": 0, "liver": 1}}', {"liver": 1, "lesion": 2},
     "the label map holds label(s) 2, which its dataset.json does not name. Give the label map its dataset.json "
     "describes, or name the label there."),
    # the Decathlon's hepatic vessel task: read as 0/1/2 its vessels were the liver; by its names the liver
    # would be its tumours alone
    ('{"labels": {"0": "background", "1": "Vessel", "2": "Tumour"}}', {"liver": 1, "lesion": 2},
     "its dataset.json names no label of the liver: the liver is not segmented, and a case needs it. Give a "
     "dataset whose label maps hold the liver."),
], ids=["organs unnamed", "a label not named", "no liver label"])
def test_a_datasets_label_map_that_cannot_be_read_as_liver_and_lesion_is_refused(tmp_path, case_0697, labels_json,
                                                                                   values, told):
    root = _dataset(tmp_path / "Dataset009", case_0697, labels_json or "{}", values)
    if labels_json is None:
        (root / "dataset.json").unlink()
    (ref,) = find_cases(root)
    with pytest.raises(InputError) as exc:
        load_case(ref)
    assert str(exc.value) == f"{root / 'labelsTr/liver_7.nii.gz'}: {told}"


def test_a_dataset_of_no_lesion_label_is_read_as_lesions_not_segmented(tmp_path, case_0697, caplog):
    """A dataset of organs names a liver but no tumour: its livers may hold tumours segmented as liver
    (AbdomenCT-1K's, from LiTS), so its cases' lesions count as not segmented (training learns their
    liver alone), with one warning for the dataset."""
    root = _dataset(tmp_path / "Dataset011_Organs", case_0697,
                    '{"labels": {"background": 0, "liver": 1, "kidney": 2}}', {"liver": 1, "lesion": 1})
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        for _ in range(2):
            (ref,) = find_cases(root)
            case = load_case(ref)
    assert not case.lesion.array.any() and np.array_equal(case.liver.array, case_0697.liver.array
                                                           | case_0697.lesion.array)
    assert not case.lesions_segmented
    assert caplog.text.count("names a liver label but no lesion label: its cases' lesions are not segmented") == 1


@pytest.mark.parametrize("tumour_mask", [False, True])
def test_a_totalsegmentator_case(tmp_path, case_0697, tumour_mask):
    """TotalSegmentator's layout, the largest public set of labelled livers: ct.nii.gz beside a folder
    of one mask per structure (segmentations/liver.nii.gz, spleen.nii.gz, ...). It was left out ("it
    holds ct.nii.gz but no label map"). Its liver mask is read, the other organs' left out; with no mask
    of the liver's tumours its lesions count as not segmented."""
    case_folder = tmp_path / "Totalsegmentator_dataset" / "s0697"
    (case_folder / "segmentations").mkdir(parents=True)
    ct = case_0697.ct
    sitk.WriteImage(ct.to_sitk(), str(case_folder / "ct.nii.gz"))
    liver = case_0697.liver.array | case_0697.lesion.array
    sitk.WriteImage(ct.with_array(liver).to_sitk(), str(case_folder / "segmentations/liver.nii.gz"))
    spleen = np.zeros(ct.shape, np.uint8)
    spleen[5:10, 100:140, 380:420] = 1
    sitk.WriteImage(ct.with_array(spleen).to_sitk(), str(case_folder / "segmentations/spleen.nii.gz"))
    if tumour_mask:
        sitk.WriteImage(case_0697.lesion.to_sitk(), str(case_folder / "segmentations/liver_tumor.nii.gz"))
    (ref,) = find_cases(tmp_path)
    assert ref == CaseRef("s0697", "structure-masks", (case_folder / "ct.nii.gz", case_folder / "segmentations"))
    case = load_case(ref)
    assert case.lesions_segmented == tumour_mask
    if tumour_mask:
        assert_same_as_0697(case, case_0697)
    else:
        assert np.array_equal(case.liver.array, liver) and not case.lesion.array.any()
    assert read_input_volume(case_folder).same_grid(ct)


def test_train_on_a_case_whose_lesions_are_not_segmented_says_so(tmp_path, case_0697, capsys):
    """Through the command: a dataset of organs beside a dataset of liver and tumours; the log names the
    case that trains the liver alone."""
    from LiverLesionSegLib.cli import main

    _dataset(tmp_path / "data" / "Dataset011_Organs", case_0697, '{"labels": {"background": 0, "liver": 1, '
             '"kidney": 2}}', {"liver": 1, "lesion": 1}, case="organs_1")
    _dataset(tmp_path / "data" / "Dataset003_Liver", case_0697, '{"labels": {"background": 0, "liver": 1, '
             '"tumor": 2}}', {"liver": 1, "lesion": 2})
    code = main(["train", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs", "1", "--cycles", "1",
                 "--max-slices-per-epoch", "4", "--batch-size", "2", "--progress", "none", "--validate", "organs_1"])
    assert code == 0 and (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "dice.png").is_file()  # the liver's validation Dice, where no lesion's is measured
    assert "Of these, 1 have their lesions not segmented and train (or validate) the liver alone: organs_1." \
        in capsys.readouterr().err


@pytest.mark.parametrize("validate", [True, False])
def test_memory_running_out_at_a_later_case_is_the_readers_line_as_the_cases_before_are_on_disk(
        tmp_path, case_0697, capsys, monkeypatch, validate):
    """The cases read before (a training case's slices, a validation case's whole CT and masks) are kept
    on disk, not in memory (`slice_store`): where memory runs out at a later case, the reader's line on
    that volume says it all. With (simulated) 24 MiB free, the first case (8 slices) is read and the
    second (44) is not."""
    from LiverLesionSegLib import memory
    from LiverLesionSegLib.cli import main

    ct, label_map = case_0697.ct, case_0697.label_map()
    first_slices = Volume(ct.array[:8].copy(), ct.spacing, ct.origin, ct.direction, "a")
    for name, volume, labels in (("a", first_slices, label_map[:8].copy()), ("b", ct, label_map)):
        (tmp_path / "cases" / name).mkdir(parents=True)
        sitk.WriteImage(volume.to_sitk(), str(tmp_path / "cases" / name / "image.nii.gz"))
        sitk.WriteImage(volume.with_array(labels).to_sitk(), str(tmp_path / "cases" / name / "labels.nii.gz"))
    monkeypatch.setattr(memory, "available_bytes", lambda: 24 * 2**20)
    code = main(["train", str(tmp_path / "cases"), "--out", str(tmp_path / "run"), "--progress", "none",
                 *(["--validate", "a"] if validate else [])])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 8 and not (tmp_path / "run").exists()
    assert re.search(r"cases/b/image\.nii\.gz: reading this 512 x 512 x 44 voxel volume needs about \d+ MiB of "
                     r"memory, but only 24 MiB is available\. Close other programs, or crop the volume", error), error


def test_evaluate_measures_the_liver_alone_where_the_lesions_are_not_segmented(tmp_path, case_0697, capsys):
    """Its empty lesion mask would have counted every lesion found as a false one: its lesion measures
    are left empty, its liver's kept, and the summaries' lesion measures leave it out."""
    from LiverLesionSegLib.cli import main

    _dataset(tmp_path / "data" / "Dataset011_Organs", case_0697,
             '{"labels": {"background": 0, "liver": 1, "kidney": 2}}', {"liver": 1, "lesion": 1}, case="organs_1")
    _dataset(tmp_path / "data" / "Dataset003_Liver", case_0697, '{"labels": {"background": 0, "liver": 1, '
             '"tumor": 2}}', {"liver": 1, "lesion": 2})
    (tmp_path / "predictions").mkdir()
    for name in ("organs_1", "liver_7"):  # the truth of the liver and tumour dataset, as the prediction
        shutil.copy(tmp_path / "data" / "Dataset003_Liver" / "labelsTr" / "liver_7.nii.gz",
                    tmp_path / "predictions" / f"{name}.nii.gz")
    code = main(["evaluate", str(tmp_path / "data"), "--predictions", str(tmp_path / "predictions"), "--out",
                 str(tmp_path / "out"), "--progress", "none"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    cases = {c["name"]: c for c in report["cases"]}
    assert cases["organs_1"]["lesions_segmented"] is False and cases["organs_1"]["lesion_dice"] is None
    assert cases["organs_1"]["liver_dice"] == 1.0 and cases["organs_1"]["pred_lesion_volume_ml"] > 0
    assert cases["liver_7"]["lesion_dice"] == 1.0 and cases["liver_7"]["lesions_segmented"] is True
    summary = report["summary"]
    assert summary["n_lesions_not_segmented"] == 1 and summary["lesion_dice_mean"] == 1.0
    assert summary["pred_false_positive_lesions"] == 0 and summary["liver_dice_mean"] == 1.0
    assert re.search(r"organs_1 +- +1\.000 +- +- ", printed.out)


@pytest.mark.parametrize("text, why", [
    ('{"labels": {"background": 0, "liver": 1,', "Expecting property name"),  # cut short
    ('[]', "it holds no JSON object"), ('{"labels": "liver"}', "its labels are no object of names and values"),
    ('{"labels": {"liver": 1.5, "tumor": 2}}', "1.5 is no label value"),
    ('{"labels": {"liver": 1e400}}', "inf is no label value"), ('{"labels": {"liver": true}}', "True is no label"),
    ('{"labels": {"liver": [1, "x"]}}', "'x' is no label value"), ("\xff\xfe", "'utf-8' codec can't decode byte 0xff"),
])
def test_a_dataset_json_that_cannot_be_read_leaves_the_labels_as_they_are(tmp_path, case_0697, caplog, text, why):
    """Found by trying odd files: a label value of 1e400 raised OverflowError, one of 1.5 was read as
    1, and a file holding a list was told in Python's words ("'list' object has no attribute 'get'")."""
    root = _dataset(tmp_path / "Dataset009", case_0697, "{}", {"liver": 1, "lesion": 2})
    (root / "dataset.json").write_bytes(text.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        (ref,) = find_cases(root)
        assert_same_as_0697(load_case(ref), case_0697)
    assert f"dataset.json: cannot read its label names ({why}" in caplog.text


@pytest.mark.parametrize("image, labels", [("ct.nii.gz", "segmentation.nii.gz"), ("imaging.nii.gz", "mask.nrrd"),
                                           ("volume.nrrd", "label.nii")])
def test_an_image_pair_under_other_collections_names(case_0697, tmp_path, image, labels):
    """A case folder as other collections name its files (KiTS: imaging + segmentation; ct + mask):
    the folder was left out as holding no image.*."""
    folder = tmp_path / "case 12"
    folder.mkdir()
    sitk.WriteImage(case_0697.ct.to_sitk(), str(folder / image))
    sitk.WriteImage(case_0697.ct.with_array(case_0697.label_map()).to_sitk(), str(folder / labels))
    for given in (tmp_path, folder, folder / labels):
        (ref,) = find_cases(given)
        assert ref == CaseRef("case 12", "image-pair", (folder / image, folder / labels))
    assert_same_as_0697(load_case(ref), case_0697)
    assert read_input_volume(folder).same_grid(case_0697.ct)


@pytest.mark.parametrize("given", ["scene export", "scene export/labels.nrrd"])
def test_image_labels_folder(layouts, case_0697, given):
    (ref,) = find_cases(layouts / given)
    assert ref.name == "scene export"
    assert_same_as_0697(load_case(ref), case_0697)


def test_incomplete_lits_pair(layouts):
    with pytest.raises(InputError) as exc:
        find_cases(layouts / "LiTS batch/volume-4.nii")
    assert "\n" not in str(exc.value) and "volume-4.nii" in str(exc.value) and "segmentation-4" in str(exc.value)


@pytest.mark.parametrize("image, problem", [
    ("normalised", "a normalised image, not Hounsfield units"),
    ("stored values", "without their rescale to Hounsfield units"),
    ("the labels", "a label map or mask, not a CT"),  # image and labels swapped in a training set
    ("blank", "holds the one value -1000 in every voxel: a blank image, not a CT"),
    ("its spacing damaged", "x 1e-30 mm is not a CT's (each side 0.05 to 50 mm)"),
])
def test_a_training_case_whose_image_is_no_ct_in_hounsfield_units_is_refused(case_0697, tmp_path, image, problem):
    """A training or evaluation pair whose image a pipeline normalised (0 to 1), stored without its
    rescale, swapped with its labels, or left blank: the network would learn (or be measured on) what it never
    reads. One line naming the image. Its spacing damaged (`damage_inputs --kind train`, seed 26059), the
    label map was blamed: "the label map's geometry (…) differs from the image's (spacing (…, 1e-30) …)"."""
    ct, labels = case_0697.ct, case_0697.ct.with_array(case_0697.label_map())
    given = {"normalised": ct.with_array((np.clip(ct.array, -1000, 1000).astype(np.float32) + 1000) / 2000),
             "stored values": ct.with_array((ct.array.astype(np.int32) + 1024).clip(0).astype(np.uint16)),
             "the labels": labels, "blank": ct.with_array(np.full(ct.shape, -1000, np.int16)),
             "its spacing damaged": Volume(ct.array, ct.spacing[:2] + (1e-30,), ct.origin, ct.direction)}[image]
    (tmp_path / "pair").mkdir()
    sitk.WriteImage(given.to_sitk(), str(tmp_path / "pair/image.nrrd"))
    sitk.WriteImage(labels.to_sitk(), str(tmp_path / "pair/labels.nrrd"))
    (ref,) = find_cases(tmp_path / "pair")
    with pytest.raises(InputError) as exc:
        load_case(ref)
    assert "\n" not in str(exc.value) and "image.nrrd" in str(exc.value) and problem in str(exc.value)


# --- nothing to find ---------------------------------------------------------------------------

def test_folder_with_no_case_says_which_layouts_are_understood(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as exc:
        find_cases(tmp_path)
    text = str(exc.value)
    assert type(exc.value) is InputError and "\n" not in text and str(tmp_path) in text
    for layout in ("3D-IRCADb-01", "DICOM SEG", "LiTS", "Decathlon", "labels"):
        assert layout in text


def test_unlabelled_ct_is_no_case(data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"), pytest.raises(InputError) as exc:
        find_cases(data_dir / "hcc-tace-seg")
    assert "holds no labelled case" in str(exc.value) and "no labels" in caplog.text


def test_missing_path(tmp_path):
    with pytest.raises(InputError) as exc:
        find_cases([tmp_path / "absent"])
    assert "absent" in str(exc.value) and "does not exist" in str(exc.value)


def test_single_dicom_file_is_no_case(data_dir):
    path = data_dir / "tace/RadCTTACEomics_1211/10_AP_Ax2.50mm/dicom-00001.dcm"
    with pytest.raises(InputError) as exc:
        find_cases(path)
    assert "dicom-00001.dcm" in str(exc.value)


# --- the input volume for segmentation ---------------------------------------------------------

def test_input_from_an_ircadb_case_folder(data_dir, cases_json):
    volume = read_input_volume(data_dir / "ircadb/3Dircadb1.7")
    assert volume.shape[0] == 151 and cases_json["3Dircadb1.7"]["series_uid"] in volume.source
    assert "PATIENT_DICOM" in volume.source


def test_input_from_a_seg_case_folder_is_the_referenced_ct(data_dir, cases_json):
    volume = read_input_volume(data_dir / "tace/RadCTTACEomics_0697")
    assert cases_json["RadCTTACEomics_0697"]["series_uid"] in volume.source and volume.shape[0] == 44
    other = read_input_volume(data_dir / "tace/RadCTTACEomics_0697", series="11_AP_Ax5.00mm")
    assert "11_AP_Ax5.00mm" in other.source and other.origin[0] == pytest.approx(-208.816)


def test_input_from_a_dicom_folder_with_spaces(data_dir, cases_json):
    volume = read_input_volume(data_dir / "hcc-tace-seg/HCC_006")
    assert volume.shape == (109, 512, 512) and cases_json["HCC_006"]["series_uid"] in volume.source


@pytest.mark.parametrize("given", ["Task03_Liver/imagesTr/liver_7.nii.gz", "LiTS batch/volume-3.nii",
                                   "scene export/image.nrrd", "scene export"])
def test_input_from_an_image_file(layouts, case_0697, given):
    volume = read_input_volume(layouts / given)
    assert volume.same_grid(case_0697.ct)
    np.testing.assert_array_equal(volume.array, case_0697.ct.array)


def test_input_missing_path(tmp_path):
    with pytest.raises(InputError) as exc:
        read_input_volume(tmp_path / "absent.nii.gz")
    assert "\n" not in str(exc.value) and "absent.nii.gz" in str(exc.value) and "does not exist" in str(exc.value)


def test_input_that_is_no_image(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError) as exc:
        read_input_volume(tmp_path / "report.pdf")
    assert "report.pdf" in str(exc.value)
    with pytest.raises(InputError) as exc:
        read_input_volume(tmp_path)
    assert "no DICOM files found" in str(exc.value)
