"""Procedural scenes: a renderer whose output is a dataset in the COCO-Stuff file format.

COCO-Stuff and Visual Genome cannot be downloaded everywhere, so this package draws structured
outdoor scenes of its own and writes them exactly like COCO-Stuff (``instances_{split}.json``
and ``stuff_{split}.json`` with RLE segmentations, plus PNG images), so that the same loader,
training and evaluation code run on them end to end. It can also write the raw Visual Genome
JSON files that ``data_tools/preprocess_vg.py`` reads.

A scene is planned in resolution-free coordinates (``plan_scene``) and then rasterised
(``render_scene``):

* **Stuff** fills regions stacked from top to bottom (sky above mountains above the ground;
  water below the horizon; a sand or grass foreground; building walls above a road). Each
  region's upper edge is a curve ``y(x)`` and each stuff class has its own texture.
* **Things** have class-typical supports, positions and sizes: the sun, clouds, birds,
  airplanes and kites lie inside the sky; boats stand on water, cars and buses on roads,
  trees, sheep, cows and houses on grass, snowmen on snow; windows lie inside walls. Things
  standing on the ground are smaller near the horizon and larger near the bottom (perspective),
  down to 2.5% of the image, just above the loader's 2% box filter.

Every pixel belongs to exactly one annotation (like COCO-Stuff): thing masks are the visible
pixels of the thing and stuff masks the visible pixels of the region, so the image and its
masks agree. Each image has 3 to 8 annotations whose box covers more than 2% of the image.
Everything drawn for one image comes from ``image_rng(seed, split, index)``, so the output is
the same for any number of worker processes.

Modules, in pipeline order: ``classes`` (class tables, category ids, ``image_rng``),
``templates`` (scene templates and planning), ``paint`` (noise, canvas, shape primitives),
``things`` and ``stuff`` (the class drawings and textures), ``render`` (``render_scene``,
``generate_scene``), ``vg_raw`` (raw Visual Genome records) and ``writer``
(``write_dataset``).
"""

from .classes import (
    CATEGORY_ID,
    IMAGE_ID_BASE,
    MAX_OBJECTS,
    MIN_BOX_AREA,
    MIN_OBJECTS,
    OTHER_NAME,
    PALETTES,
    RGB,
    SHAPES_VERSION,
    SPLITS,
    STUFF_CLASSES,
    THING_CLASSES,
    Box,
    StuffClass,
    ThingClass,
    attribute_names,
    categories,
    class_attributes,
    image_rng,
    shapes_vocab,
)
from .paint import value_noise
from .render import RenderedScene, SceneAnnotation, generate_scene, render_scene
from .templates import (
    TEMPLATES,
    Edge,
    PolylineEdge,
    ScenePlan,
    StepEdge,
    StuffRegion,
    ThingPlacement,
    WaveEdge,
    plan_scene,
    stuff_index_at,
)
from .vg_raw import vg_records
from .writer import encode_rle, write_dataset

__all__ = [
    "CATEGORY_ID", "IMAGE_ID_BASE", "MAX_OBJECTS", "MIN_BOX_AREA", "MIN_OBJECTS", "OTHER_NAME",
    "PALETTES", "RGB", "SHAPES_VERSION", "SPLITS", "STUFF_CLASSES", "TEMPLATES", "THING_CLASSES",
    "Box", "Edge", "PolylineEdge", "RenderedScene", "SceneAnnotation", "ScenePlan", "StepEdge",
    "StuffClass", "StuffRegion", "ThingClass", "ThingPlacement", "WaveEdge", "attribute_names",
    "categories", "class_attributes", "encode_rle", "generate_scene", "image_rng",
    "plan_scene", "render_scene", "shapes_vocab", "stuff_index_at", "value_noise", "vg_records",
    "write_dataset",
]
