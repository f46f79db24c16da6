"""3D Slicer module: segment the liver and liver lesions of a CT with one click, and train the
model further on corrected segmentations.

Slicer glue only: widgets <-> the parameter node <-> the library (`LiverLesionSegLib`). Everything
that can be tested without the application lives in the library: `mrml` (nodes), `mrml_export`
(DICOM and training-case export), `mrml_charts` (the training charts), `segment_job` (segmentation
in a background thread), `training_process` (training in a background process and the model
catalogue), `dependencies` and `parameters`.
"""

import contextlib
import logging
import os
import sys
import traceback

import ctk
import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

# Light library modules only (no PyTorch): the module must load before dependencies are installed.
from LiverLesionSegLib.errors import Cancelled, LiverLesionSegError
from LiverLesionSegLib.module_text import ACKNOWLEDGEMENT_TEXT, HELP_TEXT
from LiverLesionSegLib.parameters import SegmentParameters

DEVICE_CHOICES = (("Automatic", "auto"), ("CPU", "cpu"), ("CUDA (NVIDIA GPU)", "cuda"), ("MPS (Apple GPU)", "mps"))
MODEL_FILE_CHOICE = "file"
POLL_INTERVAL_MS = 200


class LiverLesionSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Liver Lesion Segmentation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["LiverLesionSeg contributors"]
        self.parent.helpText = HELP_TEXT
        self.parent.acknowledgementText = ACKNOWLEDGEMENT_TEXT
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The bundled sample CT in the Sample Data module, loaded from the extension (no download)."""
    import SampleData
    from LiverLesionSegLib.mrml import load_sample_case

    def load(source):
        node = load_sample_case(slicer.mrmlScene)
        slicer.util.setSliceViewerLayers(background=node, fit=True)

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="Liver Lesion Segmentation", sampleName="LiverLesionSegSample", uris=[], fileNames=[], nodeNames=[],
        thumbnailFileName=os.path.join(os.path.dirname(__file__), "Resources", "Icons", "LiverLesionSegSample.png"),
        customDownloader=load)


# --- widget ---------------------------------------------------------------------------------------

class LiverLesionSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameters = None
        self._updatingGUI = False
        self.segmentationJob = None
        self.segmentTargets = None
        self.trainingProcess = None
        self.trainingCharts = None
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LiverLesionSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LiverLesionSegLogic()

        for label, value in DEVICE_CHOICES:
            self.ui.deviceSelector.addItem(label, value)
        self.ui.startFromSelector.addItem("Bundled model (fine-tune)", "bundled")
        self.ui.startFromSelector.addItem("Model chosen above (fine-tune)", "segment-model")
        self.ui.startFromSelector.addItem("Scratch", "scratch")
        self.refreshModelChoices()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Segment panel
        for selector in (self.ui.inputVolumeSelector, self.ui.outputSegmentationSelector,
                         self.ui.probabilityVolumeSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.updateParameterNodeFromGUI)
        self.ui.addVoteModelButton.connect("clicked(bool)", self.onAddVoteModel)
        self.ui.removeVoteModelButton.connect("clicked(bool)", lambda: self.removeSelected(self.ui.voteModelList))
        self.ui.deviceSelector.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        self.ui.lesionThresholdSliderWidget.connect("valueChanged(double)", self.updateParameterNodeFromGUI)
        for checkBox in (self.ui.keepEdgeLesionsCheckBox, self.ui.keepFluidLesionsCheckBox,
                         self.ui.keepLiverDensityLesionsCheckBox):
            checkBox.connect("toggled(bool)", self.updateParameterNodeFromGUI)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        # Corrected segmentation panel
        self.ui.measureAgainButton.connect("clicked(bool)", self.onMeasureAgainButton)
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicomButton)
        # Training panel
        self.ui.addCaseFolderButton.connect("clicked(bool)", self.onAddCaseFolder)
        self.ui.addScenePairButton.connect("clicked(bool)", self.onAddScenePair)
        self.ui.removeCaseButton.connect("clicked(bool)", lambda: self.removeSelected(self.ui.trainingCaseList))
        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        self.ui.compareButton.connect("clicked(bool)", self.onCompareButton)

        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()
        self.timer.stop()
        if self.segmentationJob is not None:
            self.segmentationJob.cancel()
        if self.trainingProcess is not None:
            self.trainingProcess.cancel()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.removeParameterObserver()

    def onSceneStartClose(self, caller, event):
        self.removeParameterObserver()
        self._parameters = None
        if self.segmentationJob is not None:  # its input goes with the scene
            self.segmentationJob.cancel()
        self.trainingCharts = None  # the chart nodes go with the scene; training itself goes on

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- parameter node <-> GUI ----------------------------------------------------------------
    def initializeParameterNode(self):
        self.removeParameterObserver()
        self._parameters = self.logic.getParameterNode()
        if self._parameters.input_volume is None:
            self._parameters.input_volume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.addObserver(self._parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()

    def removeParameterObserver(self):
        if self._parameters is not None:
            self.removeObserver(self._parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)

    def updateGUIFromParameterNode(self, caller=None, event=None):
        if self._parameters is None or self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            parameters = self._parameters
            self.ui.inputVolumeSelector.setCurrentNode(parameters.input_volume)
            self.ui.outputSegmentationSelector.setCurrentNode(parameters.output_segmentation)
            self.ui.probabilityVolumeSelector.setCurrentNode(parameters.probability_volume)
            self.selectModel(parameters.model)
            self.ui.voteModelList.clear()
            self.ui.voteModelList.addItems(parameters.vote_models)
            self.ui.voteGroupBox.collapsed = self.ui.voteGroupBox.collapsed and not parameters.vote_models
            self.ui.deviceSelector.setCurrentIndex(max(0, self.ui.deviceSelector.findData(parameters.device)))
            self.ui.lesionThresholdSliderWidget.value = parameters.lesion_threshold
            self.ui.keepEdgeLesionsCheckBox.checked = parameters.keep_edge_lesions
            self.ui.keepFluidLesionsCheckBox.checked = parameters.keep_fluid_lesions
            self.ui.keepLiverDensityLesionsCheckBox.checked = parameters.keep_liver_density_lesions
        finally:
            self._updatingGUI = False
        self.updateButtons()

    def updateParameterNodeFromGUI(self, *unused):
        if self._parameters is None or self._updatingGUI:
            return
        parameters = self._parameters
        wasModifying = parameters.node.StartModify()
        parameters.input_volume = self.ui.inputVolumeSelector.currentNode()
        parameters.output_segmentation = self.ui.outputSegmentationSelector.currentNode()
        parameters.probability_volume = self.ui.probabilityVolumeSelector.currentNode()
        parameters.model = self.selectedModel()
        parameters.vote_models = [self.ui.voteModelList.item(row).text() for row in range(self.ui.voteModelList.count)]
        parameters.device = self.ui.deviceSelector.currentData or "auto"
        parameters.lesion_threshold = self.ui.lesionThresholdSliderWidget.value
        parameters.keep_edge_lesions = self.ui.keepEdgeLesionsCheckBox.checked
        parameters.keep_fluid_lesions = self.ui.keepFluidLesionsCheckBox.checked
        parameters.keep_liver_density_lesions = self.ui.keepLiverDensityLesionsCheckBox.checked
        parameters.node.EndModify(wasModifying)

    def updateButtons(self):
        running = self.segmentationJob is not None
        self.ui.applyButton.text = "Cancel" if running else "Apply"
        self.ui.applyButton.enabled = running or self.ui.inputVolumeSelector.currentNode() is not None
        self.ui.modelPathLineEdit.enabled = self.ui.modelSelector.currentData == MODEL_FILE_CHOICE
        self.ui.trainButton.text = "Cancel training" if self.trainingProcess is not None else "Start training"

    # --- model choice --------------------------------------------------------------------------
    def refreshModelChoices(self):
        from LiverLesionSegLib.training_process import ModelCatalogue

        current = self.selectedModel() if self.ui.modelSelector.count else "bundled"
        self.ui.modelSelector.blockSignals(True)
        self.ui.modelSelector.clear()
        self.ui.modelSelector.addItem("Bundled model", "bundled")
        for entry in reversed(ModelCatalogue().models()):  # newest first
            self.ui.modelSelector.addItem(f"Trained: {entry.name}", entry.path)
        self.ui.modelSelector.addItem("Checkpoint file...", MODEL_FILE_CHOICE)
        self.ui.modelSelector.blockSignals(False)
        self.selectModel(current)

    def selectModel(self, model):
        index = self.ui.modelSelector.findData(model)
        if index < 0:  # a checkpoint file not in the list
            index = self.ui.modelSelector.findData(MODEL_FILE_CHOICE)
            self.ui.modelPathLineEdit.currentPath = model
        self.ui.modelSelector.setCurrentIndex(index)
        self.ui.modelPathLineEdit.enabled = self.ui.modelSelector.currentData == MODEL_FILE_CHOICE

    def onAddVoteModel(self):
        self.ui.voteModelList.addItems(list(qt.QFileDialog.getOpenFileNames(
            slicer.util.mainWindow(), "Models that vote", "", "Checkpoints (*.safetensors)")))
        self.updateParameterNodeFromGUI()

    def removeSelected(self, listWidget):  # the training cases, or the models that vote
        for item in listWidget.selectedItems():
            listWidget.takeItem(listWidget.row(item))
        self.updateParameterNodeFromGUI()

    def selectedModel(self):
        choice = self.ui.modelSelector.currentData
        if choice == MODEL_FILE_CHOICE:
            return self.ui.modelPathLineEdit.currentPath or "bundled"
        return choice or "bundled"

    # --- segmentation --------------------------------------------------------------------------
    def onApplyButton(self):
        if self.segmentationJob is not None:
            self.segmentationJob.cancel()
            self.ui.segmentStatusLabel.text = "Cancelling..."
            return
        with reportedErrors("Segmentation could not start"):
            self.logic.ensureDependencies()
            self.updateParameterNodeFromGUI()
            self.segmentationJob, self.segmentTargets = self.logic.startSegmentation(self._parameters)
            self.ui.segmentProgressBar.value = 0
            self.ui.segmentStatusLabel.text = "Starting..."
            self.timer.start()
        self.updateButtons()

    def pollSegmentation(self):
        from LiverLesionSegLib.segment_job import stage_text

        job = self.segmentationJob
        for event in job.poll():
            percent = job.progress_bar.update(event)
            if percent is not None:
                self.ui.segmentProgressBar.value = percent
                self.ui.segmentStatusLabel.text = stage_text(event)
            elif event.get("event") == "log":  # e.g. the device, or a fallback to the CPU
                self.ui.segmentStatusLabel.text = event["message"]
                logging.log(logging.WARNING if event.get("level") == "warning" else logging.INFO, event["message"])
        if not job.done:
            return
        self.segmentationJob = None
        self.updateButtons()
        if isinstance(job.error, Cancelled):
            self.ui.segmentStatusLabel.text = "Cancelled; nothing was changed."
            self.ui.segmentProgressBar.value = 0
        elif job.error is not None:
            self.ui.segmentStatusLabel.text = "Failed."
            showError(job.error, "Segmentation failed")
        else:
            with reportedErrors("The result could not be added to the scene"):
                outputs = self.logic.finishSegmentation(job, self.segmentTargets)
                self.ui.segmentStatusLabel.text = (outputs.summary + f" (on {job.device_used.type.upper()})"
                                                   + outputs.cautions)
                self.showResults(outputs)

    def showResults(self, outputs):
        inputNode = self.segmentTargets["input"]
        probability = outputs.probability_node
        slicer.util.setSliceViewerLayers(background=inputNode, foreground=probability,
                                         foregroundOpacity=0.4 if probability else None, fit=False)
        outputs.segmentation_node.GetDisplayNode().SetVisibility(True)
        self.ui.comparedSegmentationSelector.setCurrentNode(outputs.segmentation_node)
        self.ui.correctedSegmentationSelector.setCurrentNode(outputs.segmentation_node)
        showTable(outputs.lesion_table_node)

    # --- after correction ----------------------------------------------------------------------
    def correctedPair(self):
        """(the volume, the corrected segmentation): the volume the segmentation was made on, else the input."""
        from LiverLesionSegLib.mrml import reference_volume_of

        segmentation = self.ui.correctedSegmentationSelector.currentNode()
        return reference_volume_of(segmentation) or self.ui.inputVolumeSelector.currentNode(), segmentation

    def onMeasureAgainButton(self):
        with reportedErrors("The lesions could not be measured"):
            self.logic.ensureDependencies()
            outputs = self.logic.measureAgain(*self.correctedPair())
            self.ui.correctedStatusLabel.text = outputs.summary + outputs.cautions
            showTable(outputs.lesion_table_node)

    def onExportDicomButton(self):
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Folder for the DICOM SEG and report")
        if not folder:
            return
        with reportedErrors("The DICOM SEG and report could not be written"):
            self.logic.ensureDependencies()
            with slicer.util.WaitCursor():
                exported, added = self.logic.exportDicom(*self.correctedPair(), folder,
                                                         structures=self.ui.exportStructuresCheckBox.checked,
                                                         addToDatabase=self.ui.addToDicomDatabaseCheckBox.checked)
            names = [path.name for path in exported.files]
            self.ui.correctedStatusLabel.text = (
                f"Wrote {', '.join(names[:-1])} and {names[-1]} ({len(exported.lesions)} lesion(s), "
                f"{'corrected by a reader' if exported.corrected else 'the model result unchanged'}) to {folder}. "
                + ("Added to the DICOM database: send them to a PACS from the DICOM module." if added else
                   "Import that folder in the DICOM module to send them to a PACS."))

    def onCompareButton(self):
        with reportedErrors("The segmentations could not be compared"):
            self.logic.ensureDependencies()
            showTable(self.logic.compare(self.ui.inputVolumeSelector.currentNode(),
                                         self.ui.comparedSegmentationSelector.currentNode(),
                                         self.ui.referenceSegmentationSelector.currentNode()))

    # --- training ------------------------------------------------------------------------------
    def onAddCaseFolder(self):
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Folder of training cases")
        if folder:
            self.addCaseItem(folder, {"folder": folder})

    def onAddScenePair(self):
        volume = self.ui.sceneVolumeSelector.currentNode()
        segmentation = self.ui.sceneSegmentationSelector.currentNode()
        if volume is None or segmentation is None:
            slicer.util.warningDisplay("Choose a CT volume and its corrected segmentation first.")
            return
        self.addCaseItem(f"Scene: {volume.GetName()} + {segmentation.GetName()}",
                         {"volume": volume.GetID(), "segmentation": segmentation.GetID()})

    def addCaseItem(self, text, data):
        item = qt.QListWidgetItem(text)
        item.setData(qt.Qt.UserRole, data)
        self.ui.trainingCaseList.addItem(item)

    def trainingCases(self):
        items = [self.ui.trainingCaseList.item(row).data(qt.Qt.UserRole)
                 for row in range(self.ui.trainingCaseList.count)]
        folders = [item["folder"] for item in items if "folder" in item]
        pairs = [(slicer.mrmlScene.GetNodeByID(item["volume"]), slicer.mrmlScene.GetNodeByID(item["segmentation"]))
                 for item in items if "volume" in item]
        return folders, [pair for pair in pairs if None not in pair]

    def trainingSettings(self, folders):
        from LiverLesionSegLib.training_process import TrainingSettings

        startFrom = self.ui.startFromSelector.currentData
        if startFrom == "segment-model":
            startFrom = self.selectedModel()
        validate = [name.strip() for name in self.ui.validationCasesLineEdit.text.split(",") if name.strip()]
        return TrainingSettings(
            cases=folders, validate=validate, validate_every=self.ui.validateEverySpinBox.value,
            cycles=self.ui.cyclesSpinBox.value, epochs_per_cycle=self.ui.epochsSpinBox.value,
            learning_rate=self.ui.learningRateSpinBox.value,
            bce_weight=self.ui.bceWeightSpinBox.value, dice_weight=self.ui.diceWeightSpinBox.value,
            tversky_weight=self.ui.tverskyWeightSpinBox.value, augment=self.ui.augmentCheckBox.checked,
            start_from=startFrom, device=self.ui.deviceSelector.currentData or "auto")

    def onTrainButton(self):
        if self.trainingProcess is not None:
            self.trainingProcess.cancel()
            return
        with reportedErrors("Training could not start"):
            self.logic.ensureDependencies()
            folders, pairs = self.trainingCases()
            self.trainingProcess = self.logic.startTraining(self.trainingSettings(folders), pairs)
            self.trainingCharts = self.logic.newTrainingCharts(self.trainingProcess.run_dir.name)
            slicer.modules.plots.logic().ShowChartInLayout(self.trainingCharts.loss_chart)
            self.ui.trainingLogTextEdit.clear()
            self.appendTrainingLog(f"Training in {self.trainingProcess.run_dir}")
            self.ui.trainingProgressBar.value = 0
            self.timer.start()
        self.updateButtons()

    def pollTraining(self):
        from LiverLesionSegLib.training_process import describe_event, step_percent, step_text

        process = self.trainingProcess
        events = process.poll()
        if self.trainingCharts is not None:
            self.trainingCharts.add_events(events)
        for event in events:
            line = describe_event(event)
            if line:
                self.appendTrainingLog(line)
        if process.last_step is not None:
            self.ui.trainingProgressBar.value = step_percent(process.last_step)
            self.ui.trainingStatusLabel.text = step_text(process.last_step)
        if process.state == "running":
            return
        self.trainingProcess = None
        self.updateButtons()
        if process.state == "finished":
            self.ui.trainingStatusLabel.text = f"Done: the model {process.model_entry.name} is offered above."
            self.refreshModelChoices()
        elif process.state == "cancelled":
            self.ui.trainingStatusLabel.text = "Cancelled. Earlier models are unchanged; checkpoints so far are kept."
            self.appendTrainingLog(f"Cancelled; the checkpoints written so far stay in {process.run_dir}")
        else:
            self.ui.trainingStatusLabel.text = "Failed."
            slicer.util.errorDisplay(f"Training failed: {process.error_message}")

    def appendTrainingLog(self, text):
        self.ui.trainingLogTextEdit.appendPlainText(text)

    # --- both ----------------------------------------------------------------------------------
    def onTimer(self):
        if self.segmentationJob is not None:
            self.pollSegmentation()
        if self.trainingProcess is not None:
            self.pollTraining()
        if self.segmentationJob is None and self.trainingProcess is None:
            self.timer.stop()


def showTable(tableNode):
    slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
    slicer.app.applicationLogic().PropagateTableSelection()


@contextlib.contextmanager
def reportedErrors(title):
    """Show an error as a message box (see `showError`) instead of raising it."""
    try:
        yield
    except BaseException as error:  # the panel reports every failure, as the block it guards ends
        showError(error, title)


def showError(error, title):  # a project error as its one line; a bug with its traceback under "details"
    if isinstance(error, LiverLesionSegError):
        return slicer.util.errorDisplay(str(error), windowTitle=title)
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    logging.error(details)
    slicer.util.errorDisplay(f"{title}: {type(error).__name__}: {error}", windowTitle=title, detailedText=details)


# --- logic ----------------------------------------------------------------------------------------

class LiverLesionSegLogic(ScriptedLoadableModuleLogic):
    """A thin layer over the library, usable from the Python console too:

        logic = slicer.modules.liverlesionseg.widgetRepresentation().self().logic  # or LiverLesionSegLogic()
        outputs = logic.segment(slicer.util.getNode("CT"))
    """

    def getParameterNode(self):
        return SegmentParameters(super().getParameterNode())

    def ensureDependencies(self):
        from LiverLesionSegLib.dependencies import ensure_dependencies

        with slicer.util.WaitCursor():
            ensure_dependencies(confirm=slicer.util.confirmOkCancelDisplay)

    def segment(self, inputVolume, model="bundled", device="auto", lesionThreshold=None,
                outputSegmentation=None, probabilityVolume=None, voteModels=(), **keepRules):
        """Blocking: for scripts and the self-test. `voteModels`: checkpoint files voting with `model`;
        `keepRules`: keep_edge_lesions, keep_fluid_lesions, keep_liver_density_lesions (True: rule off)."""
        from LiverLesionSegLib import mrml

        return mrml.segment_volume_node(slicer.mrmlScene, inputVolume, model, device, lesionThreshold,
                                        outputSegmentation, probabilityVolume, None, vote_models=voteModels,
                                        **keepRules)

    def startSegmentation(self, parameters):
        """Copy the input now (the user may change the scene while the job runs) and start the job."""
        from LiverLesionSegLib import mrml

        return mrml.start_segmentation(parameters)

    def finishSegmentation(self, job, targets):
        from LiverLesionSegLib import mrml
        from LiverLesionSegLib.segment_job import model_names

        return mrml.write_outputs(slicer.mrmlScene, targets["input"], job.result, targets["output"],
                                  targets["probability"], model_names(job.model, job.vote_models))

    def startTraining(self, settings, scenePairs=()):
        """Export the scene pairs next to the runs, then start the training process."""
        from LiverLesionSegLib import mrml

        return mrml.start_training(settings, scenePairs)

    def measureAgain(self, volume, segmentation):
        """The lesion table and long-axis lines of `segmentation` measured anew, after correction."""
        from LiverLesionSegLib import mrml

        return mrml.measure_again(volume, segmentation)

    def exportDicom(self, volume, segmentation, folder, structures=False, addToDatabase=False):
        """`segmentation` as a DICOM SEG and a DICOM SR lesion report in `folder` (and, with
        `structures`, an RT structure set), over the DICOM series `volume` was loaded from (found
        through Slicer's DICOM database); with `addToDatabase`, the files written are added to that
        database (as Slicer's own DICOM plugins add what they derive), where the DICOM module sends
        them on. Returns (`DicomExport`, whether they were added: not when no database is open)."""
        from LiverLesionSegLib import mrml_export

        database = getattr(slicer, "dicomDatabase", None)
        exported = mrml_export.export_dicom(volume, segmentation, folder,
                                            database.fileForInstance if database else None, structures)
        added = bool(addToDatabase and database is not None and database.isOpen)
        if added:
            indexer = ctk.ctkDICOMIndexer()
            for path in exported.files:
                indexer.addFile(database, str(path))
        return exported, added

    def compare(self, volume, segmentation, reference):
        """`segmentation` of `volume` measured against `reference`, as a new row of the scene's
        comparison table; returns that table."""
        from LiverLesionSegLib import mrml, mrml_tables

        table = mrml_tables.comparison_table(slicer.mrmlScene)
        mrml.compare_segmentations(volume, segmentation, reference, table)
        return table

    def newTrainingCharts(self, name):
        from LiverLesionSegLib.mrml_charts import TrainingCharts

        return TrainingCharts(slicer.mrmlScene, name)


# --- test -----------------------------------------------------------------------------------------

class LiverLesionSegTest(ScriptedLoadableModuleTest):
    """Runs the test bodies that pytest runs on slicer-core (Testing/Python/slicer_logic_cases.py),
    here in Slicer with the bundled model and the bundled sample case."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        testing = os.path.join(os.path.dirname(__file__), "Testing", "Python")
        if testing not in sys.path:
            sys.path.insert(0, testing)
        for test in (self.test_segmentation_of_sample_case, self.test_reoriented_sample_case,
                     self.test_after_correction, self.test_export_to_dicom_database, self.test_training_charts):
            self.setUp()
            test()

    def sampleInputs(self):
        import slicer_logic_cases as cases
        from LiverLesionSegLib.io.cases import read_input_volume
        from LiverLesionSegLib.resources import bundled_model_path, sample_case_path

        ct = read_input_volume(sample_case_path())
        middle = max(0, ct.shape[0] // 2 - 12)
        return cases.crop_slices(ct, middle, min(24, ct.shape[0])), bundled_model_path()

    def test_segmentation_of_sample_case(self):
        import tempfile

        import slicer_logic_cases as cases

        self.delayDisplay("Segmenting the sample case")
        ct, model = self.sampleInputs()
        core = cases.core_segmentation(ct, model)
        run = cases.run_logic(slicer.mrmlScene, ct, model)
        cases.check_input_node_geometry(run)
        cases.check_segments(run)
        cases.check_masks_match_core(run, core)
        cases.check_cautions(run, core)
        cases.check_physical_points_match(run, core)
        cases.check_probability_volume(run, core)
        cases.check_lesion_table(run, core)
        cases.check_long_axis_lines(run)
        with tempfile.TemporaryDirectory() as folder:
            cases.check_seg_nrrd_round_trip(run, folder)
        cases.check_existing_segmentation_kept(slicer.mrmlScene, run, core)
        cases.check_cancel_leaves_scene_unchanged(slicer.mrmlScene, ct, model)
        self.delayDisplay("Segmentation test passed")

    def test_reoriented_sample_case(self):
        import slicer_logic_cases as cases

        self.delayDisplay("Segmenting the sample case stored in another voxel order")
        ct, model = self.sampleInputs()
        core = cases.core_segmentation(ct, model)
        reoriented = cases.reoriented(ct, axes=(1, 2, 0), flips=(True, False, True))
        run = cases.run_logic(slicer.mrmlScene, reoriented, model)
        cases.check_physical_points_match(run, core)
        self.delayDisplay("Reoriented test passed")

    def test_after_correction(self):
        import tempfile

        import slicer_logic_cases as cases

        with tempfile.TemporaryDirectory() as folder:
            cases.check_sample_case_after_correction(slicer.mrmlScene, folder)
        self.delayDisplay("Measuring again and DICOM export test passed")

    def test_export_to_dicom_database(self):
        import tempfile

        import pydicom
        import slicer_logic_cases as cases
        from DICOMLib import DICOMUtils

        volume, segmentation, _, _ = cases.sample_case_drawn_by_hand(slicer.mrmlScene)
        with tempfile.TemporaryDirectory() as folder, DICOMUtils.TemporaryDICOMDatabase():
            exported, added = LiverLesionSegLogic().exportDicom(volume, segmentation, folder, addToDatabase=True)
            assert added, "a temporary DICOM database is open: the files should have been added"
            for path in (exported.seg, exported.report):
                uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
                assert slicer.dicomDatabase.fileForInstance(uid), f"{path.name} is not in the DICOM database"
        self.delayDisplay("DICOM database test passed")

    def test_training_charts(self):
        import json

        import slicer_logic_cases as cases

        path = os.path.join(os.path.dirname(__file__), "Testing", "Data", "training_progress.jsonl")
        with open(path, encoding="utf-8") as f:
            events = [json.loads(line) for line in f if line.strip()]
        cases.check_training_charts(slicer.mrmlScene, events)
        self.delayDisplay("Training chart test passed")
