"""The result's tables and measurement lines in the scene: the lesion table (one row a lesion; the
columns a reader added follow their lesion when it is measured again), the lesions' long-axis lines,
the comparison table, and the table helpers the training charts (`mrml_charts`) share.

VTK and MRML calls only, as in `mrml`, so it runs in Slicer and on the `slicer-core` wheel.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import vtk

from .metrics import COMPARISON_COLUMNS
from .segments import LESION
from .volume import LPS_TO_RAS


# Node reference from a segmentation node we made to its lesion table, so that replacing the
# segmentation (only ever on the user's choice) refreshes that table instead of adding another.
LESION_TABLE_ROLE = "LiverLesionSegLesionTable"
# ... and to its lesions' long-axis lines, replaced with it likewise.
LONG_AXIS_ROLE = "LiverLesionSegLongAxis"


# --- lesion table --------------------------------------------------------------------------------

# (column name, unit, description, value of a Lesion)
LESION_COLUMNS = (
    ("Lesion", "", "lesion number, 1 = largest", lambda lesion: lesion.number),
    ("Volume", "mL", "lesion volume", lambda lesion: lesion.volume_ml),
    ("Longest axial diameter", "mm", "largest in-plane diameter over the lesion's slices",
     lambda lesion: lesion.longest_axial_diameter_mm),
    ("Perpendicular diameter", "mm", "the lesion's width across its longest axial diameter, in that slice",
     lambda lesion: lesion.perpendicular_diameter_mm),
    ("Median CT value", "HU", "median CT value of the lesion's voxels (a cyst is under 20 HU)",
     lambda lesion: math.nan if lesion.median_hu is None else lesion.median_hu),
    ("Centroid R", "mm", "centre of the lesion, R coordinate where Slicer shows it (any transform applied)",
     lambda lesion: lesion.centroid_ras[0]),
    ("Centroid A", "mm", "centre of the lesion, A coordinate where Slicer shows it (any transform applied)",
     lambda lesion: lesion.centroid_ras[1]),
    ("Centroid S", "mm", "centre of the lesion, S coordinate where Slicer shows it (any transform applied)",
     lambda lesion: lesion.centroid_ras[2]),
)


def lesion_table_node(scene, segmentation_node, reuse: bool = True):
    """The table node of `segmentation_node`'s lesions: the one made for it before (when `reuse`),
    else a new one, referenced from it."""
    table_node = segmentation_node.GetNodeReference(LESION_TABLE_ROLE) if reuse else None
    if table_node is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode",
                                             scene.GenerateUniqueName(f"{segmentation_node.GetName()} lesions"))
        segmentation_node.SetNodeReferenceID(LESION_TABLE_ROLE, table_node.GetID())
    return table_node


def fill_lesion_table(table_node, lesions: Sequence, placed_node=None) -> list[str]:
    """One row per lesion (`lesions.Lesion`), the columns of `LESION_COLUMNS`; the centroids in world
    coordinates, through the transforms above `placed_node` (the volume measured), as the
    segmentation and the long-axis lines are shown.

    A table filled before keeps the columns a reader added (a note, a LI-RADS category): each entry
    follows its lesion, found by its centre (`_matching_rows`). Returns a caution naming the entries
    of lesions that match none measured now (an erased lesion's note), or none."""
    to_world = world_point_of(placed_node)
    lesions = [replace(lesion, centroid_ras=to_world(lesion.centroid_ras)) for lesion in lesions]
    earlier = table_node.GetTable()
    readers = [earlier.GetColumn(c) for c in range(earlier.GetNumberOfColumns())
               if earlier.GetColumnName(c) not in {name for name, *_ in LESION_COLUMNS}]
    table = vtk.vtkTable()
    for name, _, _, value in LESION_COLUMNS:
        column = vtk.vtkIntArray() if name == "Lesion" else vtk.vtkDoubleArray()
        column.SetName(name)
        for lesion in lesions:
            column.InsertNextValue(value(lesion))
        table.AddColumn(column)
    table_node.SetAndObserveTable(table)
    for name, unit, description, _ in LESION_COLUMNS:
        if unit:
            table_node.SetColumnUnitLabel(name, unit)
        table_node.SetColumnDescription(name, description)
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table_node.SetLocked(True)  # measurements, not for editing
    return _carry_reader_columns(earlier, readers, table, lesions)


_CENTROID_COLUMNS = ("Centroid R", "Centroid A", "Centroid S")
_SAME_LESION_MM = 5.0  # a corrected lesion's centre moves a few mm


def _matching_rows(earlier, lesions: Sequence) -> dict[int, int]:
    """Lesion index -> row of the `earlier` table for the same lesion: nearest centres first, one row
    each, no farther apart than 5 mm or half the lesion's longest diameter. None without centres."""
    if earlier.GetNumberOfRows() == 0 or any(earlier.GetColumnByName(n) is None for n in _CENTROID_COLUMNS):
        return {}
    centres = np.array([[earlier.GetColumnByName(n).GetVariantValue(r).ToDouble() for n in _CENTROID_COLUMNS]
                        for r in range(earlier.GetNumberOfRows())])
    pairs = sorted((float(np.linalg.norm(centres[row] - lesion.centroid_ras)), index, row)
                   for index, lesion in enumerate(lesions) for row in range(len(centres)))
    matched: dict[int, int] = {}
    for distance, index, row in pairs:
        limit = max(_SAME_LESION_MM, lesions[index].longest_axial_diameter_mm / 2)
        if distance <= limit and index not in matched and row not in matched.values():
            matched[index] = row
    return matched


def _carry_reader_columns(earlier, readers: list, table, lesions: Sequence) -> list[str]:
    """Add the reader's `readers` columns of the `earlier` table to `table`, each entry on the row of
    its lesion (empty for a lesion new to the table); a caution naming the entries left over."""
    if not readers:
        return []
    matched = _matching_rows(earlier, lesions)
    for column in readers:
        carried = vtk.vtkDoubleArray() if column.IsNumeric() else vtk.vtkStringArray()
        carried.SetName(column.GetName())
        for index in range(len(lesions)):
            value = column.GetVariantValue(matched[index]) if index in matched else None
            if column.IsNumeric():
                carried.InsertNextValue(value.ToDouble() if value is not None else math.nan)
            else:
                carried.InsertNextValue(value.ToString() if value is not None else "")
        table.AddColumn(carried)
    left = []
    numbers = earlier.GetColumnByName("Lesion")
    for row in sorted(set(range(earlier.GetNumberOfRows())) - set(matched.values())):
        entries = [f"{column.GetName()} {column.GetVariantValue(row).ToString()!r}" for column in readers
                   if not _empty_entry(column, row)]
        if entries:
            number = numbers.GetVariantValue(row).ToString() if numbers is not None else str(row + 1)
            left.append(f"lesion {number} ({', '.join(entries)})")
    if not left:
        return []
    return [f"the entries you added to the lesion table for {'; '.join(left)} match no lesion measured now "
            "(none is centred near it) and were dropped"]


def _empty_entry(column, row: int) -> bool:
    value = column.GetVariantValue(row)
    return math.isnan(value.ToDouble()) if column.IsNumeric() else not value.ToString().strip()


def add_long_axis_lines(scene, segmentation_node, lesions: Sequence) -> list:
    """Each lesion's longest axial diameter as a locked markups line named "<segmentation> lesion N
    long axis" (its first point labelled N), which Slicer draws on the lesion's slice with its own
    length measurement, for a reader to check against the image. The lines an earlier run left
    on `segmentation_node` are removed first, but for those a reader unlocked (to adjust them):
    those stay in the scene as the reader's own measurements."""
    earlier = [segmentation_node.GetNthNodeReference(LONG_AXIS_ROLE, n)
               for n in range(segmentation_node.GetNumberOfNodeReferences(LONG_AXIS_ROLE))]
    segmentation_node.RemoveNodeReferenceIDs(LONG_AXIS_ROLE)
    for node in earlier:
        if node is not None and node.GetLocked():
            scene.RemoveNode(node)
    lines = []
    for lesion in lesions:
        name = scene.GenerateUniqueName(f"{segmentation_node.GetName()} lesion {lesion.number} long axis")
        line = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", name)
        for label, point_lps in zip((str(lesion.number), ""), lesion.long_axis_lps):
            line.AddControlPoint(vtk.vtkVector3d(*(LPS_TO_RAS[:3, :3] @ np.asarray(point_lps))), label)
        line.SetLocked(True)  # a measurement, as the table is; unlock it in Markups to adjust
        line.CreateDefaultDisplayNodes()
        line.GetDisplayNode().SetSelectedColor(*LESION.color)
        segmentation_node.AddNodeReferenceID(LONG_AXIS_ROLE, line.GetID())
        lines.append(line)
    return lines


def world_point_of(node):
    """A function taking a RAS point of `node`'s own coordinates to world coordinates (through its
    parent transforms, linear or not); the identity for None or an untransformed node."""
    transform_node = None if node is None else node.GetParentTransformNode()
    if transform_node is None:
        return lambda point: tuple(float(v) for v in point)
    to_world = vtk.vtkGeneralTransform()
    transform_node.GetTransformToWorld(to_world)
    return lambda point: tuple(to_world.TransformPoint([float(v) for v in point]))


# --- comparison table ----------------------------------------------------------------------------

COMPARISON_TABLE_ATTRIBUTE = "LiverLesionSeg.Comparisons"  # marks the table the comparisons go to


def comparison_table(scene):
    """The scene's table of comparisons (its columns: the names compared, then `COMPARISON_COLUMNS`),
    made when it has none."""
    tables = scene.GetNodesByClass("vtkMRMLTableNode")
    for n in range(tables.GetNumberOfItems()):
        if tables.GetItemAsObject(n).GetAttribute(COMPARISON_TABLE_ATTRIBUTE):
            return tables.GetItemAsObject(n)
    names = [(title, vtk.vtkStringArray) for title in ("Volume", "Segmentation", "Reference")]
    node = new_table_node(scene, "LiverLesionSeg comparisons",
                  names + [(title, vtk.vtkDoubleArray) for _, title, _ in COMPARISON_COLUMNS])
    for _, title, unit in COMPARISON_COLUMNS:
        if unit:
            node.SetColumnUnitLabel(title, unit)
    node.SetAttribute(COMPARISON_TABLE_ATTRIBUTE, "1")
    return node


def append_row_by_name(table_node, row: dict) -> None:
    """One row of `row`'s values, each under the column of its name (made where missing, text or
    numbers): a column a user added or moved keeps its place and gets an empty cell."""
    table = table_node.GetTable()
    for name, value in row.items():
        if table.GetColumnByName(name) is None:
            column = vtk.vtkStringArray() if isinstance(value, str) else vtk.vtkDoubleArray()
            column.SetName(name)
            column.SetNumberOfTuples(table.GetNumberOfRows())  # earlier rows: empty
            table.AddColumn(column)
    cells = vtk.vtkVariantArray()
    for n in range(table.GetNumberOfColumns()):
        name = table.GetColumnName(n)
        cells.InsertNextValue(vtk.vtkVariant(row[name]) if name in row else vtk.vtkVariant())
    table.InsertNextRow(cells)
    table.Modified()
    table_node.Modified()


# --- table helpers (also for the training charts, mrml_charts) ----------------------------------

def new_table_node(scene, name: str, columns) -> object:
    """A table node named `name` (made unique) with empty `columns`: (name, VTK array class)."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    for column_name, array_class in columns:
        column = array_class()
        column.SetName(column_name)
        node.GetTable().AddColumn(column)
    node.SetUseColumnTitleAsColumnHeader(True)
    return node


def variant_row(*values) -> "vtk.vtkVariantArray":
    """A table row of `values`, for `vtkTable.InsertNextRow`."""
    row = vtk.vtkVariantArray()
    for value in values:
        row.InsertNextValue(vtk.vtkVariant(value))
    return row


def table_rows(table_node) -> list[dict]:
    """The rows of a table node as dicts of column name -> value (numbers stay numbers)."""
    table = table_node.GetTable()
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    return [{column.GetName(): column.GetVariantValue(r).ToDouble() if column.IsNumeric()
             else column.GetVariantValue(r).ToString() for column in columns}
            for r in range(table.GetNumberOfRows())]
