"""What can be checked of the Slicer module without the Slicer application: the .ui file against
the names the module code uses, the CMake lists against the files, the module's metadata, the
requirements file, the icon, and the boundaries (only `mrml.py` and `mrml_charts.py` import
`slicer`; the module file stays glue)."""

from __future__ import annotations

import ast
import re
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2]  # LiverLesionSeg/
REPO = MODULE_DIR.parent
MODULE_FILE = MODULE_DIR / "LiverLesionSeg.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "LiverLesionSeg.ui"
LIBRARY = MODULE_DIR / "LiverLesionSegLib"

# The widget class a name's ending promises (longest ending first).
CLASS_BY_SUFFIX = (
    ("CollapsibleButton", {"ctkCollapsibleButton"}),
    ("GroupBox", {"ctkCollapsibleGroupBox", "QGroupBox"}),
    ("PathLineEdit", {"ctkPathLineEdit"}),
    ("SliderWidget", {"ctkSliderWidget"}),
    ("ProgressBar", {"QProgressBar"}),
    ("TextEdit", {"QPlainTextEdit", "QTextEdit"}),
    ("LineEdit", {"QLineEdit"}),
    ("CheckBox", {"QCheckBox"}),
    ("SpinBox", {"QSpinBox", "QDoubleSpinBox", "ctkDoubleSpinBox"}),
    ("Selector", {"qMRMLNodeComboBox", "QComboBox"}),
    ("Button", {"QPushButton"}),
    ("Label", {"QLabel"}),
    ("List", {"QListWidget"}),
)
NODE_SELECTOR_TYPES = {
    "inputVolumeSelector": "vtkMRMLScalarVolumeNode",
    "outputSegmentationSelector": "vtkMRMLSegmentationNode",
    "probabilityVolumeSelector": "vtkMRMLScalarVolumeNode",
    "sceneVolumeSelector": "vtkMRMLScalarVolumeNode",
    "sceneSegmentationSelector": "vtkMRMLSegmentationNode",
    "comparedSegmentationSelector": "vtkMRMLSegmentationNode",
    "referenceSegmentationSelector": "vtkMRMLSegmentationNode",
    "correctedSegmentationSelector": "vtkMRMLSegmentationNode",
}


@pytest.fixture(scope="module")
def ui() -> ET.Element:
    return ET.parse(UI_FILE).getroot()


@pytest.fixture(scope="module")
def widgets(ui) -> dict[str, ET.Element]:
    found = {}
    for widget in ui.iter("widget"):
        name = widget.get("name")
        assert name not in found, f"two widgets named {name} in the .ui"
        found[name] = widget
    return found


@pytest.fixture(scope="module")
def module_source() -> str:
    return MODULE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def module_tree(module_source) -> ast.Module:
    return ast.parse(module_source)


def used_ui_names(source: str) -> set[str]:
    return set(re.findall(r"\bself\.ui\.(\w+)", source))


def prop(widget: ET.Element, name: str):
    element = widget.find(f"property[@name='{name}']")
    if element is None:
        return None
    value = element[0]
    if value.tag == "stringlist":
        return [s.text for s in value.findall("string")]
    if value.tag == "bool":
        return value.text == "true"
    return value.text


# --- the .ui file --------------------------------------------------------------------------------

def test_every_widget_the_code_uses_is_in_the_ui_with_its_class(widgets, module_source):
    used = used_ui_names(module_source)
    assert len(used) >= 25, f"the module code uses suspiciously few widgets: {sorted(used)}"
    missing = sorted(used - widgets.keys())
    assert not missing, f"the module code uses widgets the .ui does not have: {missing}"
    for name in sorted(used):
        expected = next((classes for suffix, classes in CLASS_BY_SUFFIX if name.endswith(suffix)), None)
        assert expected is not None, f"{name}: no known widget class for this name's ending"
        assert widgets[name].get("class") in expected, f"{name} is a {widgets[name].get('class')}, expected {expected}"


def test_node_selectors_show_the_right_nodes_and_get_the_scene(ui, widgets):
    connected = {c.findtext("receiver") for c in ui.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    selectors = {n for n, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    assert selectors == set(NODE_SELECTOR_TYPES), selectors
    for name, node_type in NODE_SELECTOR_TYPES.items():
        assert prop(widgets[name], "nodeTypes") == [node_type], name
        assert name in connected, f"{name} is not given the scene"
    assert prop(widgets["inputVolumeSelector"], "showChildNodeTypes") is False  # no label maps as input


def test_output_segmentation_defaults_to_a_new_node(widgets):
    """The guard in the GUI: "none" means create a new segmentation; nothing is created or picked
    for the user, so an existing node is replaced only when chosen."""
    output = widgets["outputSegmentationSelector"]
    assert prop(output, "noneEnabled") is True
    assert "create new" in prop(output, "noneDisplay").lower()
    assert prop(output, "addEnabled") is False and prop(output, "removeEnabled") is False
    probability = widgets["probabilityVolumeSelector"]
    assert prop(probability, "noneEnabled") is True and prop(probability, "addEnabled") is True


def test_ui_root_and_custom_widgets(ui, widgets):
    root = ui.find("widget")
    assert root.get("class") == "qMRMLWidget" and root.get("name") == "LiverLesionSeg"
    declared = {c.findtext("class") for c in ui.iter("customwidget")}
    used = {w.get("class") for w in widgets.values() if not w.get("class").startswith("Q")}
    assert used <= declared, f"custom widgets used but not declared: {used - declared}"
    assert prop(widgets["segmentCollapsibleButton"], "text") == "Segment"
    assert prop(widgets["trainingCollapsibleButton"], "text") == "Training"
    assert prop(widgets["compareCollapsibleButton"], "text") == "Compare with a reference"
    assert prop(widgets["applyButton"], "text") == "Apply"


def test_apply_becomes_cancel_while_running(module_source):
    assert re.search(r'applyButton\.text = "Cancel" if running else "Apply"', module_source)
    assert re.search(r'"Cancel training" if self\.trainingProcess is not None else "Start training"', module_source)


# --- CMake ---------------------------------------------------------------------------------------

def cmake_list(text: str, variable: str) -> list[str]:
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert block, f"no set({variable} ...)"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line.replace("${MODULE_NAME}", "LiverLesionSeg") for line in lines if line]


def test_cmake_lists_every_python_file_and_resource():
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    scripts = cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    on_disk = {"LiverLesionSeg.py", "Testing/Python/slicer_logic_cases.py"} | {
        p.relative_to(MODULE_DIR).as_posix() for p in LIBRARY.rglob("*.py") if "__pycache__" not in p.parts}
    assert not sorted(on_disk - set(scripts)), f"Python files missing from CMakeLists.txt: {sorted(on_disk - set(scripts))}"
    assert not sorted(set(scripts) - on_disk), f"CMakeLists.txt lists files that do not exist: {sorted(set(scripts) - on_disk)}"
    assert len(scripts) == len(set(scripts)), "a file is listed twice"
    resources = cmake_list(text, "MODULE_PYTHON_RESOURCES")
    for path in resources:
        assert (MODULE_DIR / path).is_file(), f"CMakeLists.txt lists a missing resource: {path}"
    globbed = ("Resources/Models/", "Resources/SampleData/")
    assert re.search(r"file\(GLOB_RECURSE \w+ RELATIVE \$\{CMAKE_CURRENT_SOURCE_DIR\}\s+"
                     r"Resources/Models/\* Resources/SampleData/\*\)", text)
    for path in (MODULE_DIR / "Resources").rglob("*"):
        relative = path.relative_to(MODULE_DIR).as_posix()
        if path.is_file() and not relative.startswith(globbed):
            assert relative in resources, f"resource not listed in CMakeLists.txt: {relative}"
    assert re.search(r"slicerMacroBuildScriptedModule\(\s*NAME \$\{MODULE_NAME\}\s+SCRIPTS \$\{MODULE_PYTHON_SCRIPTS\}"
                     r"\s+RESOURCES \$\{MODULE_PYTHON_RESOURCES\}", text)
    assert re.search(r"if\(BUILD_TESTING\)\s.*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", text, re.S)


def test_top_level_cmake_is_a_slicer_extension():
    text = (REPO / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(LiverLesionSeg\)", text, re.M)
    for field in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf'^set\(EXTENSION_{field} "[^"]+"\)', text, re.M), f"EXTENSION_{field} is not set"
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text
    order = [text.index(s) for s in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                                     "add_subdirectory(LiverLesionSeg)", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                                     "include(${Slicer_EXTENSION_CPACK})")]
    assert order == sorted(order)


# --- the module's metadata and shape -------------------------------------------------------------

def parent_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    module_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LiverLesionSeg")
    found = {}
    for node in ast.walk(module_class):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self.parent":
                    found[target.attr] = node.value
    return found


def test_module_metadata(module_tree, widgets):
    from LiverLesionSegLib.module_text import HELP_TEXT

    assigned = parent_assignments(module_tree)
    assert ast.literal_eval(assigned["title"]) == "Liver Lesion Segmentation"
    assert ast.literal_eval(assigned["categories"]) == ["Segmentation"]
    assert ast.unparse(assigned["helpText"]) == "HELP_TEXT"
    assert ast.unparse(assigned["acknowledgementText"]) == "ACKNOWLEDGEMENT_TEXT"
    assert ast.literal_eval(assigned["contributors"])
    help_text = " ".join(HELP_TEXT.split()).lower()
    for words in ("liver lesion", "ct", "research use", "not for clinical diagnosis", "segment editor",
                  "existing segmentation is replaced only when it is chosen", "training", "caution"):
        assert words in help_text, f"the help text does not say: {words}"
    # Every panel and folded box of the .ui is explained under its own title.
    for widget in widgets.values():
        if widget.get("class") in ("ctkCollapsibleButton", "ctkCollapsibleGroupBox"):
            title = prop(widget, "text") or prop(widget, "title")
            assert f"<b>{title.lower()}</b>" in help_text, f"the help text does not explain '{title}'"


def test_acknowledgement_credits_the_data_sets():
    from LiverLesionSegLib.module_text import ACKNOWLEDGEMENT_TEXT

    text = " ".join(ACKNOWLEDGEMENT_TEXT.split())
    for words in ("3D-IRCADb-01", "IRCAD", "HCC-TACE-Seg", "The Cancer Imaging Archive", "CC BY 4.0",
                  "doi:10.7937/TCIA.5FNA-0924", "model card", "Resources/Models/MODEL_CARD.md"):
        assert words in text, f"the acknowledgement does not mention {words}"
    # A development-and-test-only data set must not be credited as training data.
    assert "RadCTTACEomics" not in text


def test_module_classes_and_thinness(module_tree, module_source):
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in module_tree.body if isinstance(n, ast.ClassDef)}
    assert classes["LiverLesionSeg"] == ["ScriptedLoadableModule"]
    assert classes["LiverLesionSegWidget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert classes["LiverLesionSegLogic"] == ["ScriptedLoadableModuleLogic"]
    assert classes["LiverLesionSegTest"] == ["ScriptedLoadableModuleTest"]
    top_imports = {alias.name.split(".")[0] for n in module_tree.body if isinstance(n, ast.Import) for alias in n.names}
    top_from = {n.module for n in module_tree.body if isinstance(n, ast.ImportFrom)}
    assert not top_imports & {"torch", "numpy", "SimpleITK", "segmentation_models_pytorch"}, top_imports
    # Only light library modules at load time: the module must load before PyTorch is installed.
    assert {m for m in top_from if m.startswith("LiverLesionSegLib")} <= {
        "LiverLesionSegLib.errors", "LiverLesionSegLib.parameters", "LiverLesionSegLib.module_text"}
    assert "import torch" not in module_source and "np." not in module_source
    # Four panels' glue (segment, after correction, train, compare), the DICOM database (ctk) and the
    # self-test; what is more than glue belongs in the library.
    assert len(module_source.splitlines()) < 660, "the module file grows: move logic into LiverLesionSegLib"


def _method_source(module_tree, module_source, class_name: str, method: str) -> str:
    cls = next(n for n in module_tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return ast.get_source_segment(module_source, next(n for n in cls.body if getattr(n, "name", "") == method))


def test_dicom_export_adds_its_files_to_the_database_when_asked_and_one_is_open(module_tree, module_source, widgets):
    """The ctk indexer that Slicer's own DICOM plugins add derived files with, on each file written,
    only when the box is ticked (by default) and a database is open; the self-test checks it in Slicer
    on a temporary database."""
    export = _method_source(module_tree, module_source, "LiverLesionSegLogic", "exportDicom")
    assert "addToDatabase and database is not None and database.isOpen" in export
    assert "ctk.ctkDICOMIndexer()" in export and "indexer.addFile(database, str(path))" in export
    assert "for path in exported.files" in export
    button = _method_source(module_tree, module_source, "LiverLesionSegWidget", "onExportDicomButton")
    assert "addToDatabase=self.ui.addToDicomDatabaseCheckBox.checked" in button
    checked = widgets["addToDicomDatabaseCheckBox"].find("property[@name='checked']/bool")
    assert checked is not None and checked.text == "true"
    assert "self.test_export_to_dicom_database" in _method_source(module_tree, module_source,
                                                                  "LiverLesionSegTest", "runTest")


def test_self_test_runs_the_shared_bodies(module_tree, module_source):
    test_class = next(n for n in module_tree.body if isinstance(n, ast.ClassDef) and n.name == "LiverLesionSegTest")
    methods = {n.name for n in test_class.body if isinstance(n, ast.FunctionDef)}
    assert {"setUp", "runTest"} <= methods
    called = set(re.findall(r"cases\.(check_\w+)\(", ast.get_source_segment(module_source, test_class)))
    sys.path.insert(0, str(Path(__file__).parent))
    shared = {name for name in dir(__import__("slicer_logic_cases")) if name.startswith("check_")}
    assert called <= shared, f"the self-test calls checks that do not exist: {called - shared}"
    assert len(called) >= 8, f"the self-test runs few of the shared checks: {sorted(called)}"


def test_only_mrml_imports_slicer_at_load_time():
    """`mrml.py` and `mrml_charts.py` (the training charts) import `slicer` and `vtk`, `mrml_tables.py`
    (the result's tables) `vtk` only; no other module of the library imports them, nor Qt or CTK,
    which `slicer-core` lacks."""
    for path in sorted(LIBRARY.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for alias in n.names}
        names |= {(n.module or "").split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom)}
        gui = names & {"slicer", "qt", "ctk", "vtk"}
        if path.name in ("mrml.py", "mrml_charts.py"):
            assert gui == {"slicer", "vtk"}
        elif path.name == "mrml_tables.py":
            assert gui == {"vtk"}
        else:
            assert not gui, f"{path.relative_to(MODULE_DIR)} imports {gui} at load time"


# --- requirements and icon -----------------------------------------------------------------------

def test_requirements_pin_torch_as_pyproject_does():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    requirements = [line.split("#", 1)[0].strip() for line in
                    (MODULE_DIR / "Resources" / "requirements.txt").read_text().splitlines()]
    requirements = [r for r in requirements if r]
    for package in ("torch", "torchvision", "segmentation-models-pytorch"):
        pinned = [r for r in pyproject if re.match(rf"{package}\s*==", r)]
        assert pinned and pinned[0].replace(" ", "") in [r.replace(" ", "") for r in requirements], package
    names = {re.split(r"[<>=!~ ]", r)[0].lower() for r in requirements}
    assert not names & {"numpy", "simpleitk"}, "Slicer ships these; the extension must not reinstall them"
    core = {re.split(r"[<>=!~ ]", r)[0].lower() for r in pyproject}
    assert names <= core, f"requirements the package does not have: {names - core}"


def test_icon_is_a_128_pixel_png():
    data = (MODULE_DIR / "Resources" / "Icons" / "LiverLesionSeg.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (128, 128)


def test_python_versions_slicer_runs_can_parse_the_module(module_source):
    """Slicer 5.6 runs Python 3.9: no syntax newer than that in the module file."""
    assert sys.version_info >= (3, 9)
    ast.parse(module_source, feature_version=(3, 9))


def test_sample_case_is_registered_with_sample_data_at_startup():
    """The module registers the bundled sample with Slicer's Sample Data module, loaded by the
    library (`mrml.load_sample_case`, tested on slicer-core) rather than downloaded."""
    tree = ast.parse((MODULE_DIR / "LiverLesionSeg.py").read_text())
    calls = {node.func.attr: node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    register = calls["registerCustomSampleDataSource"]
    keywords = {k.arg for k in register.keywords}
    assert {"category", "sampleName", "thumbnailFileName", "customDownloader"} <= keywords
    assert "startupCompleted()" in (MODULE_DIR / "LiverLesionSeg.py").read_text()
    assert "load_sample_case" in (MODULE_DIR / "LiverLesionSeg.py").read_text()
    thumbnail = MODULE_DIR / "Resources" / "Icons" / "LiverLesionSegSample.png"
    assert thumbnail.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
