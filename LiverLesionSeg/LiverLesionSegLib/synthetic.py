"""Synthetic liver lesions painted into training slices.

With few real lesions to learn from, a model learns those lesions and little else. Painting
lesions of random size, shape, contrast and texture into the liver (as Hu et al., "Label-free
liver tumor segmentation", CVPR 2023, do in 3-D) shows it many more, tumour-free livers included.
Each lesion is an ellipse with a wobbly edge and a soft border, darker (hypodense) or brighter
(hyperdense) than the liver around it, with a little texture; its cross-section shrinks in the
neighbouring slices of a 2.5-D input, as a roughly round lesion's would. A share of them can be
drawn with a halo: a core of full contrast inside a rim of less contrast (the less hypodense rim a
metastasis shows around its dark centre) or of the opposite contrast (an enhancing rim); the rim
is lesion too. Vectorised over the batch.

Real lesions can also be shown at the opposite contrast (`mirror_real_lesions`): a training set of
dark metastases then also teaches bright, arterial-phase HCC, with real shapes and textures. And
they can be copied into another slice's liver (`paste_real_lesions`, after TumorCP: Yang et al.,
MICCAI 2021): a real lesion's shape, texture and contrast in another patient's liver, elsewhere in it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig


def add_synthetic_lesions(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """images (n, c, H, W) in window units, targets (n, 2, H, W): liver, lesion. Returns new tensors."""
    liver = targets[:, 0] > 0.5
    index = _chosen(liver, config.synthetic_lesions, generator)
    if index.numel() == 0:
        return images, targets
    m = index.numel()
    # Centre on a random liver pixel.
    centre = torch.multinomial(liver[index].flatten(1).float(), 1, generator=generator).squeeze(1)
    distance = _ellipse_distance(centre, images.shape, config.synthetic_radius, generator)

    # Darker or brighter than the liver; a little texture inside.
    hyper = torch.rand(m, generator=generator) < config.synthetic_hyperdense_share
    change = torch.where(hyper, _uniform(*config.synthetic_hyperdense, m, generator),
                         -_uniform(*config.synthetic_hypodense, m, generator)).view(-1, 1, 1)
    texture = 1 + 0.3 * _smooth_noise(m, images.shape[2], images.shape[3], 24, generator)
    # Drawn after the texture, as earlier versions did: the same seed paints the same lesions.
    sharpness, slab = _blob_shape(m, generator)
    sections = _cross_sections(distance, images.shape[1], sharpness, slab)
    # Drawn last, and only when asked for, for the same reason.
    contrast = (_halo_contrasts(distance, images.shape[1], sharpness, slab, config, generator)
                if config.synthetic_halo_share > 0 else [1.0] * len(sections))
    inside_liver = liver[index].float()

    images, targets = images.clone(), targets.clone()
    centre_channel = images.shape[1] // 2
    for channel, shape in enumerate(sections):
        shape = shape * inside_liver
        images[index, channel] = (images[index, channel] + shape * change * texture * contrast[channel]).clamp(0, 1)
        if channel == centre_channel:
            targets[index, 1] = torch.maximum(targets[index, 1], shape)
    return images, targets


def mirror_real_lesions(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Real lesions turned to the opposite contrast, in `mirrored_lesions` of the slices that hold
    one: each pixel's difference from the median of the liver on the slice (lesions left out) is
    reversed and scaled by a random `mirrored_lesion_strength`, under the lesion mask with a soft
    edge two pixels wide. All channels get the same change: in a neighbouring slice, liver under the
    mask is at the liver's median and barely changes. Targets are unchanged. Same arguments as
    `add_synthetic_lesions`."""
    lesion = targets[:, 1] > 0.5
    liver_beside = (targets[:, 0] > 0.5) & ~lesion
    # Slices whose lesion has no liver beside it (a lesion at the dome) have no median to mirror about.
    eligible = lesion.flatten(1).any(1) & liver_beside.flatten(1).any(1)
    index = (eligible & (torch.rand(lesion.shape[0], generator=generator) < config.mirrored_lesions)
             ).nonzero().flatten()
    if index.numel() == 0:
        return images, targets
    strength = _uniform(*config.mirrored_lesion_strength, index.numel(), generator).view(-1, 1, 1)
    median = slice_medians(images, liver_beside, index).view(-1, 1, 1)
    weight = _soft_edge(targets[index, 1:2])[:, 0]
    images = images.clone()
    for channel in range(images.shape[1]):
        plane = images[index, channel]
        images[index, channel] = (plane + weight * (1 + strength) * (median - plane)).clamp(0, 1)
    return images, targets


def paste_real_lesions(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Real lesions copied into other slices' livers, in `pasted_lesions` of the slices with liver
    (when the batch holds a lesion): each takes the lesions of a random slice that holds one, their
    difference from that slice's liver median added to its own liver's median, every channel alike
    (the neighbour slices' cross-sections come along), flipped at random, scaled by the ratio of the
    two livers' sizes on the slice (within 0.5 to 2: a slice of the liver's box shows it larger than
    a whole slice does) and centred on a random pixel of its liver; what falls outside its liver is
    left out, in the image and in the mask. Same arguments as `add_synthetic_lesions`."""
    lesion = targets[:, 1] > 0.5
    liver = targets[:, 0] > 0.5
    liver_beside = liver & ~lesion
    sources = (lesion.flatten(1).any(1) & liver_beside.flatten(1).any(1)).nonzero().flatten()
    index = _chosen(liver_beside, config.pasted_lesions, generator)
    if sources.numel() == 0 or index.numel() == 0:
        return images, targets
    m = index.numel()
    source = sources[torch.randint(sources.numel(), (m,), generator=generator)]

    # the lesions with a soft edge two pixels wide, within the source's liver (no fat at their edge)
    weight = _soft_edge(targets[source, 1:2]) * liver[source, None]
    difference = images[source] - slice_medians(images, liver_beside, source).view(-1, 1, 1, 1)
    moved = F.grid_sample(torch.cat([difference, weight, lesion[source, None].float()], 1),
                          _paste_grid(lesion[source], liver, liver_beside[index], index, source, generator),
                          mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = liver[index, None].float()
    weight, mask = moved[:, -2:-1] * inside, (moved[:, -1:] > 0.5).float() * inside
    pasted = slice_medians(images, liver_beside, index).view(-1, 1, 1, 1) + moved[:, :-2]
    images, targets = images.clone(), targets.clone()
    images[index] = (images[index] + weight * (pasted - images[index])).clamp(0, 1)
    targets[index, 1] = torch.maximum(targets[index, 1], mask[:, 0])
    return images, targets


def _soft_edge(lesion: torch.Tensor) -> torch.Tensor:
    """The (n, 1, h, w) lesion mask widened by a pixel and then averaged over 3 x 3: 1 inside, falling
    to 0 over two pixels outside, so a changed lesion blends into its surroundings."""
    widened = F.max_pool2d(lesion, 3, stride=1, padding=1)
    return F.avg_pool2d(widened, 3, stride=1, padding=1, count_include_pad=False)


def _paste_grid(lesion: torch.Tensor, liver: torch.Tensor, where: torch.Tensor, index: torch.Tensor,
                source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The sampling grid (m, H, W, 2) that takes each source slice's `lesion` (m, H, W) to a random
    pixel of `where` (m, H, W) in slice `index`, flipped at random and scaled by the ratio of the
    livers' sizes (`liver` (n, H, W), of the whole batch), within 0.5 to 2."""
    m, height, width = lesion.shape
    size = torch.tensor([width, height], dtype=torch.float32)

    def normalised(pixels: torch.Tensor) -> torch.Tensor:  # (m, 2) as (x, y) pixel -> [-1, 1], align_corners False
        return (2 * pixels + 1) / size - 1

    rows = torch.arange(height, dtype=torch.float32).view(1, height, 1)
    columns = torch.arange(width, dtype=torch.float32).view(1, 1, width)
    count = lesion.flatten(1).sum(1).float()
    centroid = (torch.stack([(lesion * columns).flatten(1).sum(1), (lesion * rows).flatten(1).sum(1)], 1)
                / count[:, None])
    spot = torch.multinomial(where.flatten(1).float(), 1, generator=generator).squeeze(1)
    # moved by whole pixels (at the same scale, unflipped or about a half pixel: no blur)
    destination = torch.stack([spot % width, spot // width], 1).float() + centroid - centroid.floor()
    centroid, destination = normalised(centroid), normalised(destination)
    area = liver.flatten(1).sum(1).float()
    zoom = (area[index] / area[source]).sqrt().clamp(0.5, 2.0)
    flip = torch.where(torch.rand(m, 2, generator=generator) < 0.5, -1.0, 1.0)
    linear = flip / zoom[:, None]  # target -> source, per axis
    theta = torch.zeros(m, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = linear[:, 0], linear[:, 1]
    theta[:, :, 2] = centroid - destination * linear
    return F.affine_grid(theta, [m, 1, height, width], align_corners=False)


def add_masses_beside_liver(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Masses painted just outside the liver, left unmarked: neither liver nor lesion.

    Synthetic lesions teach that a dark blob in the liver is a lesion; a model can take from them
    that any dark blob near the liver is liver and lesion, as a kidney or adrenal tumour pressing on
    the liver then is. These masses (soft tissue of random density and texture, centred within a
    mass's radius of the liver, clipped to its outside) show what is not. Same arguments as
    `add_synthetic_lesions`."""
    liver = targets[:, 0] > 0.5
    index = _chosen(liver, config.masses_beside_liver, generator)
    if index.numel() == 0:
        return images, targets
    m = index.numel()
    reach = int(round(config.mass_radius[1] / 2))
    near = F.max_pool2d(liver[index, None].float(), 2 * reach + 1, stride=1, padding=reach)[:, 0] > 0
    body = images[index, images.shape[1] // 2] > 0.05  # not air
    candidates = (near & ~liver[index] & body).flatten(1).float()
    candidates[candidates.sum(1) == 0] = 1.0  # nowhere beside the liver: anywhere, clipped below
    centre = torch.multinomial(candidates, 1, generator=generator).squeeze(1)
    distance = _ellipse_distance(centre, images.shape, config.mass_radius, generator)
    sections = _cross_sections(distance, images.shape[1], *_blob_shape(m, generator))

    density = _uniform(*config.mass_density, m, generator).view(-1, 1, 1)
    texture = 1 + 0.25 * _smooth_noise(m, images.shape[2], images.shape[3], 24, generator)
    outside = 1.0 - liver[index].float()
    images = images.clone()
    for channel, shape in enumerate(sections):
        shape = shape * outside
        images[index, channel] = (images[index, channel] * (1 - shape) + shape * density * texture).clamp(0, 1)
    return images, targets


def slice_medians(images: torch.Tensor, region: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(m,): the median of each slice `index` of `images` (n, c, H, W) over `region` (n, H, W), in
    its centre channel (the slice itself; the others are its neighbours). `region` must hold pixels
    on each of those slices."""
    centre = images[:, images.shape[1] // 2]
    return torch.stack([centre[k][region[k]].median() for k in index.tolist()])


def _chosen(liver: torch.Tensor, chance: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of the slices with liver that get a blob, each with the given chance."""
    n = liver.shape[0]
    return (liver.flatten(1).any(1) & (torch.rand(n, generator=generator) < chance)).nonzero().flatten()


def _uniform(low: float, high: float, m: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(m, generator=generator)


def _ellipse_distance(centre: torch.Tensor, shape: torch.Size, radius: tuple[float, float],
                      generator: torch.Generator) -> torch.Tensor:
    """(m, H, W): distance from flat pixel indices `centre` (m,) in units of a random ellipse's
    radius (1 on its edge), the edge made wobbly."""
    m, (_, _, height, width) = centre.numel(), shape
    cy, cx = (centre // width).float(), (centre % width).float()
    radius_x = _uniform(*radius, m, generator)
    radius_y = radius_x * _uniform(0.6, 1.0, m, generator)
    angle = _uniform(0, math.pi, m, generator)
    yy = torch.arange(height, dtype=torch.float32).view(1, height, 1)
    xx = torch.arange(width, dtype=torch.float32).view(1, 1, width)
    dx, dy = xx - cx.view(-1, 1, 1), yy - cy.view(-1, 1, 1)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    distance = torch.sqrt((u / radius_x.view(-1, 1, 1)) ** 2 + (v / radius_y.view(-1, 1, 1)) ** 2)
    return distance * (1 + 0.15 * _smooth_noise(m, height, width, 6, generator))


def _blob_shape(m: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per blob: the sharpness of its soft edge, and the distance between neighbouring slices as a
    fraction of its radius."""
    sharpness = _uniform(4, 12, m, generator).view(-1, 1, 1)
    slab = _uniform(0.2, 0.6, m, generator)
    return sharpness, slab


def _cross_sections(distance: torch.Tensor, channels: int, sharpness: torch.Tensor,
                    slab: torch.Tensor) -> list[torch.Tensor]:
    """Soft blobs inside those ellipses, one (m, H, W) per input channel: a roughly round blob's
    cross-section, smaller in the neighbouring slices."""
    sections = []
    for channel in range(channels):
        offset = (channel - channels // 2) * slab
        section = torch.sqrt(torch.clamp(1 - offset ** 2, min=0)).view(-1, 1, 1)
        sections.append(torch.sigmoid((1 - distance / section.clamp(min=1e-3)) * sharpness) * (section > 0))
    return sections


def _halo_contrasts(distance: torch.Tensor, channels: int, sharpness: torch.Tensor, slab: torch.Tensor,
                    config: AugmentConfig, generator: torch.Generator) -> list[torch.Tensor]:
    """Per input channel, the share of a lesion's contrast each pixel gets: 1 throughout, except in
    the lesions drawn with a halo (`synthetic_halo_share` of them), where a core of 40 to 70 % of
    the radius (a concentric blob, shrinking across slices as the lesion does) gets 1 and the rim
    around it a random `synthetic_halo_rim` (under 0: the opposite contrast)."""
    m = distance.shape[0]
    halo = (torch.rand(m, generator=generator) < config.synthetic_halo_share).view(-1, 1, 1)
    core = _uniform(0.4, 0.7, m, generator)
    rim = _uniform(*config.synthetic_halo_rim, m, generator).view(-1, 1, 1)
    cores = _cross_sections(distance / core.view(-1, 1, 1), channels, sharpness, slab / core)
    return [torch.where(halo, rim + (1 - rim) * inner, torch.ones_like(inner)) for inner in cores]


def _smooth_noise(n: int, height: int, width: int, cells: int, generator: torch.Generator) -> torch.Tensor:
    """Noise in [-1, 1] that varies over about size/cells pixels."""
    coarse = 2 * torch.rand(n, 1, cells, cells, generator=generator) - 1
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[:, 0].clamp(-1, 1)
