"""Boxes and masks -> layouts. Pure functions without parameters.

Coordinates follow the pixel-center convention: pixel ``j`` of a width-``W`` image covers
``[j/W, (j+1)/W]`` and is sampled at ``(j + 0.5) / W``. An object's ``(M, M)`` mask is stretched
over its box with bilinear sampling (``grid_sample``), so the layouts are differentiable with
respect to both the masks and the box coordinates; pixels whose center lies outside the box are
exactly zero.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .vocab import IMAGE_OBJECT_ID


def boxes_to_grid(boxes: Tensor, H: int, W: int) -> Tensor:
    """Sampling grid that maps each box onto the image, for ``F.grid_sample``.

    For every output pixel the grid holds the pixel center in the box's own frame, scaled to
    [-1, 1] inside the box (values beyond that lie outside it).

    Args:
        boxes: (O, 4) ``(x0, y0, x1, y1)`` in [0, 1] with ``x0 < x1``, ``y0 < y1``.
        H, W: output size.

    Returns:
        (O, H, W, 2) grid, last dim ``(x, y)`` as ``grid_sample`` expects.
    """
    x0, y0, x1, y1 = boxes.unbind(dim=1)                                      # 4 x (O,)
    ww = (x1 - x0).clamp_min(1e-6)
    hh = (y1 - y0).clamp_min(1e-6)
    xs = (torch.arange(W, device=boxes.device, dtype=boxes.dtype) + 0.5) / W  # (W,)
    ys = (torch.arange(H, device=boxes.device, dtype=boxes.dtype) + 0.5) / H  # (H,)
    gx = (xs[None, :] - x0[:, None]) / ww[:, None] * 2 - 1                    # (O, W)
    gy = (ys[None, :] - y0[:, None]) / hh[:, None] * 2 - 1                    # (O, H)
    O = boxes.shape[0]
    return torch.stack([gx[:, None, :].expand(O, H, W),
                        gy[:, :, None].expand(O, H, W)], dim=3)               # (O, H, W, 2)


def paired_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of ``a[i]`` and ``b[i]`` for every index of the leading dims (not all pairs).

    Args:
        a, b: (..., 4) boxes ``(x0, y0, x1, y1)`` of one shape.

    Returns:
        (...) IoU in [0, 1].
    """
    w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])          # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp_min(1e-9)


def warp_masks(boxes: Tensor, masks: Tensor, H: int, W: int) -> Tensor:
    """Each object's mask placed into its box on an ``H x W`` canvas.

    Args:
        boxes: (O, 4) in [0, 1].
        masks: (O, M, M) in [0, 1].

    Returns:
        (O, H, W) in [0, 1]; zero at pixels whose center is outside the box.
    """
    grid = boxes_to_grid(boxes, H, W)                                         # (O, H, W, 2)
    # Border padding: a pixel center inside the box but within half a mask texel of its edge
    # reads the edge value instead of fading towards zero; the hard inside test below then
    # cuts everything outside the box to exactly zero.
    out = F.grid_sample(masks[:, None].to(grid.dtype), grid, mode="bilinear",
                        padding_mode="border", align_corners=False)[:, 0]     # (O, H, W)
    # The grid's x depends on the column only and its y on the row only: test them apart.
    inside_x = grid[:, 0, :, 0].abs() <= 1                                    # (O, W)
    inside_y = grid[:, :, 0, 1].abs() <= 1                                    # (O, H)
    inside = inside_y[:, :, None] & inside_x[:, None, :]                      # (O, H, W)
    return out * inside.to(out.dtype)


def _slots(obj_to_img: Tensor, num_images: int) -> tuple[Tensor, int]:
    """Position of each object among its image's objects, and the largest count."""
    onehot = F.one_hot(obj_to_img, num_images)                                # (O, N)
    slot = (onehot.cumsum(dim=0) * onehot).sum(dim=1) - 1                     # (O,)
    max_objs = int(onehot.sum(dim=0).max()) if obj_to_img.numel() else 0
    return slot, max_objs


def masks_to_layout(boxes: Tensor, masks: Tensor, obj_to_img: Tensor, num_images: int,
                    H: int, W: int, vecs: Tensor | None = None) -> Tensor:
    """Sum of per-object vectors painted through their warped masks, per image.

    ``layout[n, :, y, x] = sum over objects o of image n of vecs[o] * warped_mask[o, y, x]``.
    Objects are packed per image and combined with one batched matmul, so memory is
    ``N x max_objects x H x W`` rather than ``O x D x H x W``.

    Args:
        boxes: (O, 4) in [0, 1].
        masks: (O, M, M) in [0, 1].
        obj_to_img: (O,) image index of each object, in [0, num_images).
        num_images: N, given explicitly so images without objects still get a (zero) layout.
        H, W: layout size.
        vecs: (O, D) per-object vectors; ``None`` means a single channel of ones (coverage).

    Returns:
        (N, D, H, W) layout (D = 1 when ``vecs`` is None).
    """
    if vecs is None:
        vecs = boxes.new_ones(boxes.shape[0], 1)
    D = vecs.shape[1]
    if boxes.shape[0] == 0:
        return vecs.new_zeros(num_images, D, H, W)
    warped = warp_masks(boxes, masks, H, W).flatten(1)                        # (O, HW)
    slot, max_objs = _slots(obj_to_img, num_images)
    packed_masks = warped.new_zeros(num_images, max_objs, H * W)
    packed_masks[obj_to_img, slot] = warped                                   # (N, Omax, HW)
    packed_vecs = vecs.new_zeros(num_images, max_objs, D)
    packed_vecs[obj_to_img, slot] = vecs.to(packed_vecs.dtype)                # (N, Omax, D)
    layout = torch.bmm(packed_vecs.transpose(1, 2), packed_masks.to(packed_vecs.dtype))
    return layout.view(num_images, D, H, W)                                   # (N, D, H, W)


def semantic_layout(objs: Tensor, boxes: Tensor, masks: Tensor, obj_to_img: Tensor,
                    num_images: int, num_classes: int, H: int, W: int) -> Tensor:
    """Per-class soft masks, one channel per object class.

    Channel ``c >= 1`` is the (clamped) sum of the warped masks of the image's objects of class
    ``c``. Channel 0, the ``__image__`` slot, does not hold the full-image mask of the image
    node (that would carry no information); it holds the *unlabelled* region,
    ``1 - min(1, sum of the other channels)``: pixels that no object covers. Objects of class 0
    (the image nodes) are ignored.

    Args:
        objs: (O,) class ids in [0, num_classes).
        boxes, masks, obj_to_img, num_images, H, W: as in ``masks_to_layout``.
        num_classes: C.

    Returns:
        (N, C, H, W) in [0, 1].
    """
    onehot = F.one_hot(objs, num_classes).to(masks.dtype if masks.is_floating_point()
                                             else torch.float32)              # (O, C)
    onehot[:, 0] = 0  # image nodes paint nothing
    layout = masks_to_layout(boxes, masks, obj_to_img, num_images, H, W, vecs=onehot)
    layout = layout.clamp(0.0, 1.0)
    covered = layout[:, 1:].sum(dim=1).clamp(max=1.0)                         # (N, H, W)
    return torch.cat([(1.0 - covered)[:, None], layout[:, 1:]], dim=1)        # (N, C, H, W)


def embedding_layout(obj_vecs: Tensor, boxes: Tensor, masks: Tensor, obj_to_img: Tensor,
                     num_images: int, H: int, W: int) -> Tensor:
    """Object vectors painted through their masks (sg2im's layout), summed per image.

    Args:
        obj_vecs: (O, D).
        boxes, masks, obj_to_img, num_images, H, W: as in ``masks_to_layout``.

    Returns:
        (N, D, H, W).
    """
    return masks_to_layout(boxes, masks, obj_to_img, num_images, H, W, vecs=obj_vecs)


def box_masks(num_objects: int, mask_size: int, device: torch.device | None = None,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """All-ones masks: a box filled completely (used when a dataset has no masks, e.g. VG).

    Returns:
        (O, M, M) ones.
    """
    return torch.ones(num_objects, mask_size, mask_size, device=device, dtype=dtype)


def crop_boxes(images: Tensor, boxes: Tensor, box_to_img: Tensor, size: int) -> Tensor:
    """Crop and resize boxes from images: bilinear ``torchvision.ops.roi_align``
    (``aligned=True``), in the images' dtype.

    Used by the object discriminator and by the evaluation classifiers.

    Args:
        images: (N, C, H, W), any range (kept).
        boxes: (K, 4) as (x0, y0, x1, y1) in [0, 1] of the image's width and height.
        box_to_img: (K,) long, image index of each box.
        size: S, side of the crops.

    Returns:
        (K, C, S, S) crops.
    """
    # Imported here: torchvision.ops pulls in torch._dynamo, which slows down CLI start.
    from torchvision.ops import roi_align

    h, w = images.shape[-2:]
    scale = boxes.new_tensor([w, h, w, h])
    rois = torch.cat([box_to_img.to(boxes.dtype).unsqueeze(1), boxes * scale], dim=1)  # (K, 5)
    return roi_align(images, rois.to(images.dtype), output_size=(size, size),
                     spatial_scale=1.0, sampling_ratio=2, aligned=True)

def instance_edges(objs: Tensor, boxes: Tensor, masks: Tensor, obj_to_img: Tensor,
                   num_images: int, H: int, W: int, threshold: float = 0.5) -> Tensor:
    """pix2pixHD's instance boundary map from per-object masks.

    Each pixel gets the instance id of the object whose warped mask is largest there (none
    where no mask reaches ``threshold``); a pixel is a boundary pixel when one of its four
    neighbours has another id. Unlike the semantic layout, two touching objects of one class
    stay separate. Image nodes (class 0) are not instances. Not differentiable (a 0/1 map, as
    in pix2pixHD, where it is an input).

    Args:
        objs: (O,) class ids (0 = image node).
        boxes, masks, obj_to_img, num_images, H, W: as in ``masks_to_layout``.
        threshold: mask value above which a pixel belongs to an object.

    Returns:
        (N, 1, H, W) in {0, 1}.
    """
    out = boxes.new_zeros(num_images, 1, H, W, dtype=torch.float32)
    keep = objs != IMAGE_OBJECT_ID
    if not bool(keep.any()):
        return out.to(masks.dtype if masks.is_floating_point() else torch.float32)
    boxes, masks, obj_to_img = boxes[keep].detach(), masks[keep].detach(), obj_to_img[keep]
    warped = warp_masks(boxes.float(), masks.float(), H, W)                   # (O', H, W)
    slot, max_objs = _slots(obj_to_img, num_images)
    packed = warped.new_zeros(num_images, max_objs, H, W)
    packed[obj_to_img, slot] = warped                                         # (N, Omax, H, W)
    best, ids = packed.max(dim=1)                                             # (N, H, W)
    ids = torch.where(best >= threshold, ids, torch.full_like(ids, -1))
    edge = torch.zeros_like(ids, dtype=torch.bool)
    dx = ids[:, :, 1:] != ids[:, :, :-1]                                      # (N, H, W-1)
    dy = ids[:, 1:, :] != ids[:, :-1, :]                                      # (N, H-1, W)
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    return edge[:, None].to(masks.dtype if masks.is_floating_point() else torch.float32)


def object_noise_layout(obj_noise: Tensor, objs: Tensor, boxes: Tensor, masks: Tensor,
                        obj_to_img: Tensor, num_images: int, H: int, W: int) -> Tensor:
    """Per-object noise vectors painted through their masks: 3-D noise with one region each.

    Each object's vector fills its warped mask; the image node's vector fills the pixels no
    object covers (as the unlabelled channel of ``semantic_layout``). Where masks overlap or
    fade out, the vectors are averaged by mask weight, so a pixel inside one object carries
    exactly that object's vector (standard normal when the vectors are). Redrawing one
    object's vector changes the map inside that object's mask only.

    Args:
        obj_noise: (O, D) per-object noise.
        objs: (O,) class ids (0 = image node).
        boxes, masks, obj_to_img, num_images, H, W: as in ``masks_to_layout``.

    Returns:
        (N, D, H, W).
    """
    D = obj_noise.shape[1]
    is_obj = (objs != IMAGE_OBJECT_ID).to(obj_noise.dtype)[:, None]                         # (O, 1)
    # One painting pass: object vectors, object coverage, and the image nodes' vectors
    # (image nodes span the image with all-ones masks, so theirs reaches every pixel).
    vecs = torch.cat([obj_noise * is_obj, is_obj, obj_noise * (1 - is_obj)], dim=1)
    both = masks_to_layout(boxes, masks, obj_to_img, num_images, H, W, vecs=vecs)
    painted, cover, background = both.split([D, 1, D], dim=1)
    free = (1 - cover).clamp_min(0.0)                                         # (N, 1, H, W)
    return (painted + free * background) / cover.clamp_min(1.0)


# A fixed seed: the texture basis is part of the model's definition, not of its weights, so
# every process (and every checkpoint) must rebuild the same one.
_TEXTURE_BASIS_SEED = 14


@functools.lru_cache(maxsize=8)
def _texture_basis(D: int, P: int, H: int, W: int, device: str, dtype: torch.dtype) -> Tensor:
    """(D, P, H, W) noise, the same in every process, scaled so sums over D are N(0, 1).

    Channel p is white noise at a grain of ``2**p`` pixels of a 64-pixel image (twice that at
    128), bilinearly enlarged, so the channels span fine speckle to blotches and the coarse
    generator stages, which see the conditioning map area-pooled, still get some of it.
    """
    rng = torch.Generator().manual_seed(_TEXTURE_BASIS_SEED)
    channels = []
    for p in range(P):
        grain = max(1, round(H * 2 ** p / 64))
        h, w = max(1, -(-H // grain)), max(1, -(-W // grain))
        coarse = torch.randn(D, 1, h, w, generator=rng)
        fine = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
        channels.append(fine / fine.std().clamp_min(1e-6))
    basis = torch.cat(channels, dim=1) / math.sqrt(D)
    return basis.to(device=device, dtype=dtype)


def texture_noise_layout(noise_map: Tensor, channels: int) -> Tensor:
    """Per-pixel white noise made from the painted per-object noise (texture channels).

    Pixel (y, x) of channel p is ``sum_k noise_map[k, y, x] * B[k, p, y, x]`` with a fixed
    noise basis B whose channel p has a grain of ``2**p`` pixels at 64 px (channel 0 is white
    noise). Inside an object whose vector v is standard normal this is standard normal at
    every pixel, and pixels further apart than the channel's grain are nearly uncorrelated,
    so the generator can draw texture that differs from pixel to pixel. The texture is a
    function of the object's vector: a seed fixes it, and redrawing one object's vector
    (``resample_object_noise``) redraws the texture inside that object only.

    Args:
        noise_map: (N, D, H, W), from ``object_noise_layout``.
        channels: P, the number of texture channels.

    Returns:
        (N, P, H, W).
    """
    _, D, H, W = noise_map.shape
    basis = _texture_basis(D, channels, H, W, str(noise_map.device), noise_map.dtype)
    return torch.einsum("nkhw,kphw->nphw", noise_map, basis)


def partition_stuff(boxes: Tensor, masks: Tensor, obj_to_img: Tensor, num_images: int,
                    is_stuff: Tensor, size: int, is_thing: Tensor | None = None,
                    pinned: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Stuff made to partition the canvas, as in the data: every pixel of an image belongs to
    exactly one of its stuff objects, except where a thing lies on top.

    Stuff object ``o`` scores ``warped_mask_o(p) - distance(p, box_o)`` at pixel ``p`` (the
    distance is 0 inside the box), so inside the boxes the masks compete and a pixel no box
    covers goes to the nearest box. Each pixel goes to the highest score. The region an object
    wins becomes its box (the region's bounding box) and its mask (the region cropped to that
    box and resampled to ``M x M``), so the layout stays a box and a mask per object, and
    placing those masks in those boxes gives back the regions up to the mask's resolution.
    As in the data, the stuff gives up the pixels a thing covers (its warped mask >= 0.5):
    there the thing is the only class. Boxes and masks of images without stuff, and of
    things, come back unchanged; a stuff object that wins no pixel keeps its box with an empty
    mask. Not differentiable.

    Args:
        boxes: (O, 4) in [0, 1]; masks: (O, M, M) in [0, 1]; obj_to_img: (O,).
        num_images: N.
        is_stuff: (O,) bool, the objects that take part.
        size: S, the side of the canvas the regions are decided on (the image size).
        is_thing: (O,) bool, the objects drawn on top; None: none.
        pinned: (O,) bool, stuff whose box a user set: its region stays inside that box
            (it may lose pixels there, never grow beyond it); None: none.

    Returns:
        boxes (O, 4), masks (O, M, M) in the inputs' dtypes.
    """
    idx = is_stuff.nonzero()[:, 0]                                            # (K,)
    if idx.numel() == 0:
        return boxes, masks
    M = masks.shape[-1]
    b = boxes[idx].detach().float()                                           # (K, 4)
    warped = warp_masks(b, masks[idx].detach().float(), size, size)           # (K, S, S)
    centres = (torch.arange(size, device=b.device, dtype=b.dtype) + 0.5) / size  # (S,)
    dx = (b[:, 0:1] - centres).clamp_min(0) + (centres - b[:, 2:3]).clamp_min(0)  # (K, S)
    dy = (b[:, 1:2] - centres).clamp_min(0) + (centres - b[:, 3:4]).clamp_min(0)  # (K, S)
    dist = torch.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)              # (K, S, S)
    score = warped - dist                                                     # (K, S, S)
    if pinned is not None:
        score = score.masked_fill(pinned[idx][:, None, None] & (dist > 0), -math.inf)
    score = score.flatten(1)                                                  # (K, SS)
    slot, max_slots = _slots(obj_to_img[idx], num_images)
    packed = score.new_full((num_images, max_slots, size * size), -math.inf)
    packed[obj_to_img[idx], slot] = score
    # The first highest slot per pixel (argmax over a short, strided dim is slow on the CPU).
    best, winner = packed[:, 0], torch.zeros_like(packed[:, 0], dtype=torch.long)  # (N, SS)
    for k in range(1, max_slots):
        better = packed[:, k] > best
        best = torch.where(better, packed[:, k], best)
        winner = torch.where(better, k, winner)
    winner = winner.masked_fill(best == -math.inf, -1)          # outside every pinned box
    region = (winner[obj_to_img[idx]] == slot[:, None]).view(-1, size, size)  # (K, S, S)
    if is_thing is not None and bool(is_thing.any()):
        things = is_thing.nonzero()[:, 0]
        cover = boxes.new_zeros(num_images, size, size, dtype=torch.bool)
        on = warp_masks(boxes[things].detach().float(), masks[things].detach().float(),
                        size, size) >= 0.5                                    # (T, S, S)
        cover.index_put_((obj_to_img[things],), on, accumulate=True)
        region &= ~cover[obj_to_img[idx]]

    rows, cols = region.any(dim=2), region.any(dim=1)                         # (K, S) each
    found = rows.any(dim=1)                                                   # (K,)
    ramp = torch.arange(size, device=b.device)
    first = lambda m: torch.where(m, ramp, size).amin(dim=1)                  # noqa: E731
    last = lambda m: torch.where(m, ramp, -1).amax(dim=1)                     # noqa: E731
    new = torch.stack([first(cols), first(rows), last(cols) + 1, last(rows) + 1], dim=1)
    new_boxes = torch.where(found[:, None], new.to(b.dtype) / size, b)        # (K, 4)
    crops = crop_boxes(region[:, None].to(b.dtype), new_boxes, torch.arange(len(idx),
                       device=b.device), M)[:, 0]                             # (K, M, M)
    crops = torch.where(found[:, None, None], crops, torch.zeros_like(crops))
    boxes, masks = boxes.clone(), masks.clone()
    boxes[idx] = new_boxes.to(boxes.dtype)
    masks[idx] = crops.to(masks.dtype)
    return boxes, masks
