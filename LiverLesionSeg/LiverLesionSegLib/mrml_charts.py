"""Plot chart nodes of a training run in the scene, updated live from its progress events (the
Slicer training panel's charts): the loss per step with a dashed line at each cycle boundary, and
the validation Dice per epoch. Imports `slicer`, as `mrml` does; it runs on `slicer-core` too."""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from .mrml_tables import new_table_node, variant_row
from .progress import is_finite_number, number_or_nan

DICE_KEYS = ("val_lesion_dice", "val_liver_dice")  # an epoch event's values, the Dice table's columns


class TrainingCharts:
    """Plot chart nodes of a training run, updated from its progress events: the loss per step
    with a dashed vertical line at each cycle boundary, and the validation Dice per epoch."""

    def __init__(self, scene, name: str = "Training"):
        self.scene = scene
        self.loss_table = new_table_node(scene, f"{name} loss",
                                         [("Step", vtk.vtkIntArray), ("Loss", vtk.vtkDoubleArray)])
        # Two rows (bottom and top of the line) and one x column per boundary; one series each.
        self.boundary_table = new_table_node(scene, f"{name} cycle boundaries", [("Loss", vtk.vtkDoubleArray)])
        self.boundary_table.GetTable().SetNumberOfRows(2)
        self.dice_table = new_table_node(scene, f"{name} validation Dice",
                                         [("Epoch", vtk.vtkIntArray), ("Lesion Dice", vtk.vtkDoubleArray),
                                          ("Liver Dice", vtk.vtkDoubleArray)])
        self.loss_chart = _chart(scene, f"{name} loss per step", "step", "training loss")
        self.dice_chart = _chart(scene, f"{name} validation Dice per epoch", "epoch", "validation Dice")
        self.dice_chart.SetYAxisRange(0.0, 1.0)
        self.dice_chart.SetYAxisRangeAuto(False)
        _add_series(scene, self.loss_chart, self.loss_table, "Step", "Loss", "loss per step", (0.12, 0.47, 0.71))
        _add_series(scene, self.dice_chart, self.dice_table, "Epoch", "Lesion Dice", "lesion Dice",
                    (1.0, 0.23, 0.19), markers=True)
        _add_series(scene, self.dice_chart, self.dice_table, "Epoch", "Liver Dice", "liver Dice",
                    (0.17, 0.63, 0.17), markers=True)
        self._last_step: Optional[dict] = None

    def add_events(self, events: Iterable[dict]) -> None:
        """Append what `step` and `epoch` events say; other events are ignored. The tables are
        signalled once per call, so pass a whole batch of lines at a time."""
        loss, dice = self.loss_table.GetTable(), self.dice_table.GetTable()
        for event in events:
            kind = event.get("event")
            if kind == "step" and is_finite_number(event.get("loss")):
                if self._last_step is not None and event.get("cycle") != self._last_step.get("cycle"):
                    self._add_boundary((self._last_step["step"] + event["step"]) / 2, event.get("cycle"))
                loss.InsertNextRow(variant_row(int(event["step"]), float(event["loss"])))
                self._last_step = event
            elif kind == "epoch" and any(is_finite_number(event.get(key)) for key in DICE_KEYS):
                dice_values = (number_or_nan(event.get(key)) for key in DICE_KEYS)
                dice.InsertNextRow(variant_row(int(event["epoch"]), *dice_values))
        self._stretch_boundaries()
        for table_node in (self.loss_table, self.dice_table, self.boundary_table):
            table_node.GetTable().Modified()
            table_node.Modified()

    def boundary_steps(self) -> list[float]:
        """Where the cycle boundary lines stand, in steps (half-way between two cycles' steps)."""
        table = self.boundary_table.GetTable()
        return [table.GetValue(0, c).ToDouble() for c in range(1, table.GetNumberOfColumns())]

    def _add_boundary(self, x: float, cycle) -> None:
        column_name = f"Cycle {cycle} start"
        column = vtk.vtkDoubleArray()
        column.SetName(column_name)
        column.SetNumberOfValues(2)
        column.Fill(float(x))
        self.boundary_table.GetTable().AddColumn(column)
        _add_series(self.scene, self.loss_chart, self.boundary_table, column_name, "Loss", column_name.lower(),
                    (0.5, 0.5, 0.5), dashed=True)

    def _stretch_boundaries(self) -> None:
        """Boundary lines run from 0 to the largest loss so far."""
        losses = numpy_support.vtk_to_numpy(self.loss_table.GetTable().GetColumn(1))
        top = float(np.nanmax(losses)) if len(losses) else 1.0
        heights = self.boundary_table.GetTable().GetColumn(0)
        heights.SetValue(0, 0.0)
        heights.SetValue(1, top)


def _chart(scene, title: str, x_title: str, y_title: str):
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(title))
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_title)
    chart.SetYAxisTitle(y_title)
    chart.SetLegendVisibility(True)
    return chart


def _add_series(scene, chart, table_node, x: str, y: str, name: str, colour, dashed: bool = False,
                markers: bool = False):
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{chart.GetName()} {name}"))
    series.SetName(name)
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetXColumnName(x)
    series.SetYColumnName(y)
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle if markers
                          else slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
    series.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleDash if dashed
                        else slicer.vtkMRMLPlotSeriesNode.LineStyleSolid)
    series.SetColor(*colour)
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return series
