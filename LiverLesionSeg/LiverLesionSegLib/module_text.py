"""The Slicer module's help and acknowledgement texts (kept here so that the module file stays glue)."""

HELP_TEXT = """
Segments the liver and liver lesions (tumours, metastases) in an abdominal CT volume with a U-Net,
and measures each lesion.
<p><b>Segment</b>: choose a CT volume (contrast-enhanced abdominal CT in Hounsfield units, any
orientation and spacing), a model and a device, and press Apply. The result is a new segmentation
with a "Liver" and a "Liver lesion" segment (standard terminology) to review and correct in the
Segment Editor, a table with each lesion's volume, longest axial diameter and the width across it,
median CT value and centre, and,
if asked for, the lesion probability as a heatmap volume. An existing segmentation is replaced
only when it is chosen as the output. Lesions with little liver around them (most masses beside the
liver), of fluid density (cysts, the gallbladder) and of the liver's own density are dropped unless
the boxes below are ticked; so are lesions with gas in them (the stomach or the bowel).
<b>Majority vote with more models</b>: list more model files (trained with other seeds, say); each
segments the CT with the same settings, and a voxel is liver or lesion where most models say so.</p>
<p><b>Cautions</b>: where the scan is unlike what the model learned from (a weakly enhanced liver: an
arterial phase or no contrast; slices more than 4 mm apart; a liver cut by the scan's first or last
slice; no liver, or one under 300 mL; values not in Hounsfield units), a caution shows under the result and is stored
with the segmentation: check such a result with extra care.</p>
<p><b>After correction</b>: once the segmentation is corrected in the Segment Editor, <i>Measure lesions
again</i> refills its lesion table and long-axis lines from the segments as they are now, and
<i>Export DICOM SEG and report</i> writes it as a DICOM SEG and the measurements as a DICOM SR report
(marked as corrected by a reader where it differs from the model's result) over the DICOM series
the CT was loaded from, into a folder you
choose; import that folder in the DICOM module to send both to a PACS. A CT not loaded from DICOM,
moved since, or whose files left the DICOM database is refused.</p>
<p><b>Compare with a reference</b>: measures a segmentation (the model's, or a corrected one) against a
reference segmentation of the same CT: liver and lesion Dice, surface distances, lesions found,
missed and false; one row per comparison in a table.</p>
<p><b>Training</b>: fine-tune the model (or train one from scratch) on case folders and on CT +
corrected segmentation pairs from the scene; training runs in the background with live loss and
Dice curves, and the new model is offered in the Segment panel. Earlier models are kept.</p>
<p><b>Limits</b>: for research use only, not for clinical diagnosis or treatment decisions. The
model was trained on a small number of public CT scans: check every result; small or low-contrast
lesions can be missed, and non-CT images or images outside the abdomen give meaningless results.</p>
<p>Details: the extension's README and the model card (Resources/Models/MODEL_CARD.md).</p>
"""

ACKNOWLEDGEMENT_TEXT = """
The public CT data sets used to develop and train LiverLesionSeg are credited here: 3D-IRCADb-01
(IRCAD France; Soler L. et al., 3D image reconstruction for comparison of algorithm database) and
HCC-TACE-Seg from The Cancer Imaging Archive (Moawad A. W. et al., doi:10.7937/TCIA.5FNA-0924,
CC BY 4.0). Which data sets the bundled model learned from, with their licences, is stated on its
model card (Resources/Models/MODEL_CARD.md). Built on PyTorch and segmentation_models_pytorch.
"""
