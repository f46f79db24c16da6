"""The Segment panel's settings, kept in the module's parameter node (a
`vtkMRMLScriptedModuleNode`) so that a saved scene restores them.

Values are stored as the node's string parameters, nodes as node references, under the names
below; a value missing from the node (a new scene, an older scene) reads as its default. No
`slicer` import: the wrapper only calls methods of the node it is given.
"""

from __future__ import annotations

from typing import Optional

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_LESION_THRESHOLD = 0.5


def _switch(name: str, doc: str) -> property:
    """An on/off parameter stored as "true" or "false" (off when unset)."""
    def get(self) -> bool:
        return self._get(name) == "true"

    def set(self, value: bool) -> None:
        self.node.SetParameter(name, "true" if value else "false")

    return property(get, set, doc=doc)


class SegmentParameters:
    """Typed access to the parameter node: `parameters.lesion_threshold = 0.4` writes the node."""

    # node reference roles
    INPUT_VOLUME = "InputVolume"
    OUTPUT_SEGMENTATION = "OutputSegmentation"
    PROBABILITY_VOLUME = "ProbabilityVolume"
    # string parameters, with defaults
    MODEL = "Model"
    DEVICE = "Device"
    LESION_THRESHOLD = "LesionThreshold"
    KEEP_EDGE_LESIONS = "KeepEdgeLesions"
    KEEP_FLUID_LESIONS = "KeepFluidLesions"
    KEEP_LIVER_DENSITY_LESIONS = "KeepLiverDensityLesions"
    VOTE_MODELS = "VoteModels"
    DEFAULTS = {MODEL: "bundled", DEVICE: "auto", LESION_THRESHOLD: str(DEFAULT_LESION_THRESHOLD),
                KEEP_EDGE_LESIONS: "false", KEEP_FLUID_LESIONS: "false", KEEP_LIVER_DENSITY_LESIONS: "false",
                VOTE_MODELS: ""}

    def __init__(self, node):
        self.node = node

    # --- nodes ---------------------------------------------------------------------------------
    @property
    def input_volume(self):
        return self.node.GetNodeReference(self.INPUT_VOLUME)

    @input_volume.setter
    def input_volume(self, volume_node) -> None:
        self._set_reference(self.INPUT_VOLUME, volume_node)

    @property
    def output_segmentation(self):
        """The segmentation the user chose to replace; None means "create a new one"."""
        return self.node.GetNodeReference(self.OUTPUT_SEGMENTATION)

    @output_segmentation.setter
    def output_segmentation(self, segmentation_node) -> None:
        self._set_reference(self.OUTPUT_SEGMENTATION, segmentation_node)

    @property
    def probability_volume(self):
        """The volume to receive the lesion probability map; None for no map."""
        return self.node.GetNodeReference(self.PROBABILITY_VOLUME)

    @probability_volume.setter
    def probability_volume(self, volume_node) -> None:
        self._set_reference(self.PROBABILITY_VOLUME, volume_node)

    # --- values --------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """"bundled" or the path of a checkpoint file."""
        return self._get(self.MODEL)

    @model.setter
    def model(self, value: str) -> None:
        self.node.SetParameter(self.MODEL, str(value) or self.DEFAULTS[self.MODEL])

    @property
    def vote_models(self) -> list[str]:
        """Checkpoint files that also segment the CT, for a majority vote with `model` (none: `model` alone)."""
        return [line for line in self._get(self.VOTE_MODELS).split("\n") if line]

    @vote_models.setter
    def vote_models(self, paths) -> None:
        self.node.SetParameter(self.VOTE_MODELS, "\n".join(str(p) for p in paths if str(p)))

    @property
    def device(self) -> str:
        value = self._get(self.DEVICE)
        return value if value in DEVICES else self.DEFAULTS[self.DEVICE]

    @device.setter
    def device(self, value: str) -> None:
        if value not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {value!r}")
        self.node.SetParameter(self.DEVICE, value)

    @property
    def lesion_threshold(self) -> float:
        try:
            value = float(self._get(self.LESION_THRESHOLD))
        except ValueError:
            return DEFAULT_LESION_THRESHOLD
        return value if 0.0 < value < 1.0 else DEFAULT_LESION_THRESHOLD

    @lesion_threshold.setter
    def lesion_threshold(self, value: float) -> None:
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"the lesion threshold must lie between 0 and 1, not {value}")
        self.node.SetParameter(self.LESION_THRESHOLD, repr(float(value)))

    keep_edge_lesions = _switch(KEEP_EDGE_LESIONS, "Keep lesions with little liver around them (the model's "
                                                    "clean-up drops them otherwise).")
    keep_fluid_lesions = _switch(KEEP_FLUID_LESIONS, "Keep lesions of fluid density (cysts; the model's clean-up "
                                                      "drops them otherwise).")
    keep_liver_density_lesions = _switch(KEEP_LIVER_DENSITY_LESIONS, "Keep lesions of the liver's density (the "
                                                                      "model's clean-up drops them otherwise).")

    # --- helpers -------------------------------------------------------------------------------
    def _get(self, name: str) -> str:
        value = self.node.GetParameter(name)
        return value if value else self.DEFAULTS[name]

    def _set_reference(self, role: str, node: Optional[object]) -> None:
        self.node.SetNodeReferenceID(role, node.GetID() if node is not None else None)
