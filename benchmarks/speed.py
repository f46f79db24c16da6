"""Speed on this machine: whole-case segmentation, training throughput and peak memory.

    python benchmarks/speed.py [--model FILE] [--repeats 3]

Prints, in one run on one machine:
- whole-case segmentation time, from the input files to the written .seg.nrrd, for a 129-slice
  and a 207-slice shared case: the fast path (`liverlesionseg segment`'s own code) against a naive
  baseline (the same model and pipeline in plain PyTorch: eval mode, one slice at a time, float32,
  every slice), best of --repeats, and the Dice of the fast masks against the naive ones;
- training throughput in slices per second: the training loop against a plain loop (full-resolution
  slices resampled per step, per-slice augmentation, float32);
- peak resident memory of `liverlesionseg segment` on a 512 x 512 x 300 volume (real slices
  repeated), in a separate process;
- the core count and the thread settings used.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from LiverLesionSegLib.checkpoint import load_checkpoint  # noqa: E402
from LiverLesionSegLib.config import InferenceConfig  # noqa: E402
from LiverLesionSegLib.dataset import SliceSet, epoch_order, prepare_training_case  # noqa: E402
from LiverLesionSegLib.augment import augment_batch  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, load_case, read_input_volume  # noqa: E402
from LiverLesionSegLib.io.write import write_segmentation_output  # noqa: E402
from LiverLesionSegLib.losses import SegmentationLoss  # noqa: E402
from LiverLesionSegLib.metrics import dice  # noqa: E402
from LiverLesionSegLib.model import build_network, compute_dtype  # noqa: E402
from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.postprocess import clean_masks, largest_component  # noqa: E402
from LiverLesionSegLib.preprocess import (between_slices, channel_positions, liver_hu_shift, prepare_ct,  # noqa: E402
                                          window)
from LiverLesionSegLib.resources import bundled_model_path  # noqa: E402
from LiverLesionSegLib.slice_store import slices_on_disk  # noqa: E402
from LiverLesionSegLib.volume import Volume, to_axial_lps  # noqa: E402
from LiverLesionSegLib.zoom import AIR_HU, crop, liver_box_from_network_grid, paste  # noqa: E402

CASES = {"3Dircadb1.1 (129 slices)": "ircadb/3Dircadb1.1", "RadCTTACEomics_1211 (207 slices)": "tace/RadCTTACEomics_1211"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=12)
    args = parser.parse_args()
    model = args.model or bundled_model_path()

    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
          f"{torch.get_num_interop_threads()} inter-op threads, bfloat16 on this CPU: "
          f"{compute_dtype(torch.device('cpu'), 'auto') is not None}")
    print(f"model: {model}")
    checkpoint = load_checkpoint(model)
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in CASES.items():
            segmentation_speed(label, args.data / folder, checkpoint, Path(tmp), args.repeats)
        thin_slice_speed(args.data, checkpoint, args.repeats)
        training_speed(args.data, checkpoint.config, args.train_steps)
        peak_memory(args.data, model, Path(tmp))
    return 0


# --- whole-case segmentation --------------------------------------------------------------------

def segmentation_speed(label: str, folder: Path, checkpoint, tmp: Path, repeats: int) -> None:
    fast_times, naive_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        volume = read_input_volume(folder)
        fast = segment_volume(volume, checkpoint)
        write_segmentation_output(tmp / "fast.seg.nrrd", volume.with_array(fast.label_map()))
        fast_times.append(time.perf_counter() - start)
    for _ in range(repeats):
        start = time.perf_counter()
        volume = read_input_volume(folder)
        naive_liver, naive_lesion = naive_segment(volume, checkpoint)
        labels = naive_liver.copy()
        labels[naive_lesion > 0] = 2
        write_segmentation_output(tmp / "naive.seg.nrrd", volume.with_array(labels))
        naive_times.append(time.perf_counter() - start)
    slices = volume.shape[0]
    fast_s, naive_s = min(fast_times), min(naive_times)
    print(f"segment {label}: fast {fast_s:.2f} s ({fast_s / slices * 100:.2f} s per 100 slices), "
          f"naive {naive_s:.2f} s, speed-up {naive_s / fast_s:.1f}x; stages of the last fast run: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in fast.timings.items()))
    print(f"    fast vs naive masks: liver Dice {dice(fast.liver.array, naive_liver):.4f}, "
          f"lesion Dice {dice(fast.lesion.array, naive_lesion):.4f} "
          f"({int(naive_lesion.sum())} naive lesion voxels)")


def naive_segment(volume, checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The plain way: every slice, one at a time, float32, default memory format."""
    network = checkpoint.network.to(memory_format=torch.contiguous_format).eval()
    pre, config = checkpoint.config.preprocess, checkpoint.config.inference
    ct, reorientation = to_axial_lps(volume)
    dz = ct.spacing[2]
    liver, lesion, probability = naive_pass(network, ct.array, pre, config, dz)
    if pre.zoom:
        found = largest_component(liver_small_from(network, ct.array, pre, config, dz))
        box = liver_box_from_network_grid(found, np.arange(ct.shape[0]), ct.shape, ct.spacing, pre.zoom_margin_mm,
                                          pre.zoom_extra_slices + pre.context_reach(dz), config.box_quantum)
        liver, lesion = np.zeros(ct.shape, np.uint8), np.zeros(ct.shape, np.uint8)
        probability = np.zeros(ct.shape, np.float32)
        if box is not None:
            shift = liver_hu_shift(prepare_ct(ct.array, pre), found, pre)  # the liver's median to its reference
            for target, values in zip((liver, lesion, probability),
                                      naive_pass(network, crop(ct.array, box, AIR_HU), pre, config, dz, shift)):
                paste(target, values, box)
    liver, lesion = clean_masks(liver, lesion, ct.spacing, config, ct.array, probability)
    checkpoint.network.to(memory_format=torch.channels_last)
    return reorientation.undo(liver), reorientation.undo(lesion)


def _slice_input(array: np.ndarray, k: int, pre, slice_spacing_mm: float, hu_shift: float = 0.0) -> torch.Tensor:
    below, above, weight = between_slices(channel_positions([k], pre, slice_spacing_mm)[0], len(array))
    x = torch.from_numpy(window(array[np.concatenate([below, above])], pre, hu_shift))[None]
    x = F.interpolate(x, size=(pre.size, pre.size), mode="area")
    x = torch.round(x * 255) / 255  # the same 8-bit steps as the stored stacks
    lower, upper = x[:, :len(below)], x[:, len(below):]
    x = lower + torch.from_numpy(weight)[None, :, None, None] * (upper - lower)  # neighbours between slices
    return (x - 0.5) / 0.25 if pre.normalise == "centred" else x


def naive_pass(network, array: np.ndarray, pre, config: InferenceConfig, slice_spacing_mm: float,
               hu_shift: float = 0.0):
    liver = np.zeros(array.shape, np.uint8)
    lesion = np.zeros(array.shape, np.uint8)
    lesion_probability = np.zeros(array.shape, np.float32)
    with torch.no_grad():
        for k in range(len(array)):
            probabilities = torch.sigmoid(network(_slice_input(array, k, pre, slice_spacing_mm, hu_shift)))
            full = F.interpolate(probabilities, size=array.shape[1:], mode="bilinear", align_corners=False)[0]
            liver[k] = (full[0] >= config.liver_threshold).numpy()
            lesion[k] = (full[1] >= config.lesion_threshold).numpy()
            lesion_probability[k] = full[1].numpy()
    return liver, lesion, lesion_probability


def liver_small_from(network, array: np.ndarray, pre, config: InferenceConfig, slice_spacing_mm: float) -> np.ndarray:
    with torch.no_grad():
        return np.stack([(torch.sigmoid(network(_slice_input(array, k, pre, slice_spacing_mm)))[0, 0]
                          >= config.liver_threshold)
                         .numpy().astype(np.uint8) for k in range(len(array))])


# --- training throughput ------------------------------------------------------------------------

def training_speed(data: Path, config, steps: int) -> None:
    case = load_case(find_cases([data / "ircadb" / "3Dircadb1.17"])[0])
    prepared = prepare_training_case(case, config)
    batch = config.train.batch_size

    network = build_network(config).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    loss_fn = SegmentationLoss(config.loss)
    dtype = compute_dtype(torch.device("cpu"), config.train.precision)
    generator = torch.Generator().manual_seed(0)
    slices = SliceSet([prepared])  # in memory, as training held them before the slice store
    order = epoch_order(slices, config.train, np.random.default_rng(0))

    def fast_step(i: int) -> None:
        x, y = slices.batch(order[(i * batch) % len(order):][:batch], config.preprocess)
        x, y = augment_batch(x, y, config.augment, generator)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = network(x.contiguous(memory_format=torch.channels_last))
        loss, _ = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    in_memory = _slices_per_second(fast_step, steps, batch)
    with tempfile.TemporaryDirectory() as folder, slices_on_disk(Path(folder)) as store:
        slices = SliceSet([store.keep(copy.deepcopy(prepared))])  # memory-mapped, as `train` keeps them
        fast = _slices_per_second(fast_step, steps, batch)

    plain = build_network(config).to(memory_format=torch.contiguous_format).train()
    plain_optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-4)
    ct, liver, lesion = case.ct.array, case.liver.array, case.lesion.array
    rng = np.random.default_rng(0)

    def plain_step(i: int) -> None:
        images, targets = [], []
        for k in rng.integers(0, len(ct), batch):  # full-resolution slices, resampled and augmented one by one
            x = _slice_input(ct, int(k), config.preprocess, case.ct.spacing[2])
            y = F.interpolate(torch.from_numpy(np.stack([liver[k], lesion[k]]).astype(np.float32))[None],
                              size=(config.preprocess.size,) * 2, mode="area")
            x, y = augment_batch(x, y, config.augment, generator)
            images.append(x)
            targets.append(y)
        loss, _ = loss_fn(plain(torch.cat(images)), torch.cat(targets))
        plain_optimizer.zero_grad()
        loss.backward()
        plain_optimizer.step()

    slow = _slices_per_second(plain_step, steps, batch)
    print(f"train: {fast:.1f} slices/s against {slow:.1f} slices/s for the plain loop ({fast / slow:.1f}x), "
          f"batch {batch}, {config.preprocess.in_channels} input channel(s), "
          f"{'bfloat16 autocast' if dtype else 'float32'}; the slices memory-mapped from disk, as `train` keeps "
          f"them ({in_memory:.1f} slices/s with the same slices in memory)")


def _slices_per_second(step, steps: int, batch: int) -> float:
    step(0)  # warm-up
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    return steps * batch / (time.perf_counter() - start)


def thin_slice_speed(data: Path, checkpoint, repeats: int) -> None:
    """RadCTTACEomics_1211 re-sliced to 0.625 mm (828 slices, interpolated in memory, as a scanner's
    thin reconstruction): the network on every third slice (`model_slice_spacing_mm`, the default)
    against every slice, from the volume in memory to the masks."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from slice_spacing import resliced

    thin = resliced(load_case(find_cases(data / "tace" / "RadCTTACEomics_1211")[0]), 0.25).ct
    every = dataclasses.replace(checkpoint.config.inference, model_slice_spacing_mm=0.0)
    results, times = {}, {}
    for name, config in (("sampled", checkpoint.config.inference), ("every slice", every)):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            results[name] = segment_volume(thin, checkpoint, config)
            runs.append(time.perf_counter() - start)
        times[name] = min(runs)
    sampled, plain = results["sampled"], results["every slice"]
    print(f"segment RadCTTACEomics_1211 re-sliced to 0.625 mm ({thin.shape[0]} slices): network on every third slice "
          f"{times['sampled']:.2f} s (model {sampled.timings['model']:.2f} s), on every slice "
          f"{times['every slice']:.2f} s (model {plain.timings['model']:.2f} s); liver Dice between them "
          f"{dice(sampled.liver.array, plain.liver.array):.4f}, lesion Dice "
          f"{dice(sampled.lesion.array, plain.lesion.array):.4f}")


# --- peak memory --------------------------------------------------------------------------------

def peak_memory(data: Path, model: Path, tmp: Path) -> None:
    import SimpleITK as sitk

    volume = read_input_volume(data / "tace" / "RadCTTACEomics_1211")
    array = np.concatenate([volume.array, volume.array[:93]])  # 300 real slices
    image = Volume(array, volume.spacing, volume.origin, volume.direction).to_sitk()
    sitk.WriteImage(image, str(tmp / "big.nii.gz"))
    # VmHWM, not ru_maxrss: getrusage carries the parent's peak over fork and exec into the child.
    script = ("import sys; from LiverLesionSegLib.cli import main; code = main(sys.argv[1:]); "
              "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", script, "segment", str(tmp / "big.nii.gz"), "-o",
                          str(tmp / "big.seg.nrrd"), "--model", str(model), "--progress", "none"],
                         capture_output=True, text=True, cwd=REPO / "LiverLesionSeg")
    if run.returncode:
        print("peak memory: the run failed:", run.stderr.strip()[-300:])
        return
    peak_mb = int(run.stdout.strip().splitlines()[-1]) / 1024
    print(f"peak memory segmenting 512 x 512 x 300: {peak_mb:.0f} MB resident (whole process, torch included)")


if __name__ == "__main__":
    sys.exit(main())
