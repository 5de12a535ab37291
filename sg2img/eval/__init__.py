"""Evaluate a scene-graph-to-image generator: metrics, their registry, networks and the report.

``evaluate(generator, dataset, EvalOptions(...))`` runs the generator over a dataset split once
per sample and feeds the outputs to the requested metrics; ``write_report`` writes the result as
JSON and as a Markdown table. ``evaluate_checkpoint`` is what ``sg2img evaluate`` runs.

Metrics (names for ``EvalOptions.metrics``), one module per family:
    * ``layout_recall``: R@0.3, R@0.5 and mean IoU of the boxes predicted from the graph alone
      (:func:`layout_recall`), also split by object size (:mod:`.layout_metrics`).
    * ``layout``: relation satisfaction, box-size fidelity, recall of small objects, layout
      diversity, and with ``layout_diagnostics`` where the small objects' misses come from.
    * ``fid`` / ``is``: torchmetrics' ``FrechetInceptionDistance`` / ``InceptionScore`` with the
      feature network of :mod:`.nets` (ours on the procedural scenes, InceptionV3 from a
      user-given weights file elsewhere) (:mod:`.image_quality`).
    * ``obj_acc``: Grid2Im's object classification accuracy with a classifier trained on real
      crops (:mod:`.object_accuracy`).
    * ``diversity``: LPIPS between two samples of each graph when the LPIPS weights are present,
      the weight-free ``mean_pixel_distance``, and the distance between the two samples in the
      FID feature network's space (also as a ratio to two different real scenes).
    * ``attr_acc`` / ``attr_swap`` (datasets with attributes): an attribute classifier trained
      on real crops names the colour of each colourable object; the swap test changes one
      object's colour with noise and layout frozen (:mod:`.attributes`).
    * ``faithfulness`` / ``relation_swap`` (asked for by name): a detector reads the generated
      pictures themselves: objects found, hallucinations, colours and geometric triples, beside
      the real images' figures (:mod:`.faithfulness`); and whether a flipped left/right or
      above/below triple flips the picture (:mod:`.relation_swap`). Any system's images are
      scored with :func:`score_faithfulness`.

The attribute metrics are in the default set only when the dataset has attributes and the
model uses them (:func:`default_metrics`). Other metrics plug in with :func:`register_metric`.
The networks the metrics score with are trained on real images by :func:`train_eval_nets`;
the object detector that reads generated pictures (:class:`SceneDetector`, shipped for the
procedural scenes, :func:`load_detector`; a torchvision COCO detector from user weights,
:func:`load_coco_detector`) by :func:`train_detector` (:mod:`.detector`).
"""

from .attributes import AttributeAccuracy, AttributeSwap, box_region
from .box_file import (
    BOX_FILE_FORMAT,
    BoxFileError,
    gt_boxes_by_image,
    load_box_file,
    match_box_file,
    score_box_file,
    score_box_pairs,
    write_box_file,
)
from .boxes import (
    DEFAULT_RECALL_THRESHOLDS,
    DEFAULT_SIZE_EDGES,
    GEOMETRIC_PREDICATES,
    SMALL_OBJECT_AREA,
    box_area_fraction,
    box_iou,
    box_predicate,
    box_size_fidelity,
    layout_diversity,
    layout_recall,
    layout_recall_by_size,
    mean_class_box_recall,
    mean_class_boxes,
    object_boxes_of,
    paired_box_iou,
    real_object_mask,
    recall_from_iou,
    relation_satisfaction,
    size_bins,
)
from .context import (
    EvalContext,
    resolve_attribute_classifier,
    resolve_classifier,
    resolve_feature_extractor,
    unpinned,
)
from .detector import (
    COCO_ARCHS,
    DETECTOR_FILE,
    Detections,
    SceneDetector,
    build_detector,
    coco_category_names,
    detector_arch,
    load_coco_detector,
    load_detector,
    save_detector,
    shipped_detector,
)
from .detector_training import DetectorTraining, share_detector, train_detector
from .diversity import Diversity, mean_pixel_distance
from .faith_files import (
    FaithFilesError,
    dataset_graphs,
    evaluate_images,
    find_images,
    load_images,
    read_graphs_file,
    write_protocol_graphs,
)
from .faith_match import MAX_SEARCH_NODES, MatchProblem, match_detections
from .faith_score import (
    COCO_DETECTOR_ARCH,
    FaithImage,
    FaithJudge,
    graphs_of_batch,
    resolve_detector,
)
from .faith_sheet import write_faithfulness_sheet
from .faith_tally import DEFAULT_BOOTSTRAP, FaithTally, bootstrap_ratios
from .faithfulness import Faithfulness, score_faithfulness
from .image_quality import FID, InceptionScore
from .layout_metrics import (
    LayoutQuality,
    LayoutRecall,
    LayoutScores,
    pinned_small_boxes,
    score_layouts,
    swap_diagnosis,
)
from .nets import (
    ASSET_DIR,
    ATTRIBUTE_CLASSIFIER_FILE,
    CLASSIFIER_FILE,
    EVAL_NET_FORMAT_VERSION,
    FEATURE_NET_FILE,
    INCEPTION_FID_FILE,
    INCEPTION_FID_URL,
    INCEPTION_NAME,
    SCENE_FEATURE_NET_NAME,
    TRAIN_COMMAND,
    AttributeClassifier,
    CropClassifier,
    EvalWeightsError,
    FeatureExtractor,
    SceneFeatureNet,
    build_lpips,
    check_net_vocab,
    crop_boxes,
    crop_objects,
    down_and_up,
    find_inception_weights,
    images_to_uint8,
    inception_feature_extractor,
    load_eval_net,
    load_shipped_net,
    lpips_backbone_file,
    lpips_cache_file,
    save_eval_net,
    scene_feature_extractor,
    shipped_asset_dir,
)
from .object_accuracy import ObjectAccuracy, classification_accuracy, per_class_accuracy
from .registry import METRICS, Metric, register_metric
from .relation_swap import (
    RelationSwap,
    SwapCase,
    relation_swap_graphs,
    score_relation_swap,
    swap_case,
)
from .report import report_to_markdown, write_report
from .run import (
    ATTRIBUTE_METRICS,
    DEFAULT_METRICS,
    PROTOCOLS,
    EvalOptions,
    default_metrics,
    evaluate,
    evaluate_box_file,
    evaluate_checkpoint,
)
from .training import EVAL_NET_KINDS, EvalNetTraining, rescore_feature_net, train_eval_nets

__all__ = [
    "ASSET_DIR",
    "ATTRIBUTE_CLASSIFIER_FILE",
    "ATTRIBUTE_METRICS",
    "AttributeAccuracy",
    "AttributeClassifier",
    "AttributeSwap",
    "bootstrap_ratios",
    "box_area_fraction",
    "BOX_FILE_FORMAT",
    "box_iou",
    "box_predicate",
    "box_region",
    "box_size_fidelity",
    "BoxFileError",
    "build_detector",
    "build_lpips",
    "check_net_vocab",
    "classification_accuracy",
    "CLASSIFIER_FILE",
    "COCO_ARCHS",
    "coco_category_names",
    "COCO_DETECTOR_ARCH",
    "crop_boxes",
    "crop_objects",
    "down_and_up",
    "CropClassifier",
    "dataset_graphs",
    "DEFAULT_BOOTSTRAP",
    "default_metrics",
    "DEFAULT_METRICS",
    "DEFAULT_RECALL_THRESHOLDS",
    "DEFAULT_SIZE_EDGES",
    "Detections",
    "detector_arch",
    "DETECTOR_FILE",
    "DetectorTraining",
    "Diversity",
    "EVAL_NET_FORMAT_VERSION",
    "EVAL_NET_KINDS",
    "EvalContext",
    "EvalNetTraining",
    "EvalOptions",
    "evaluate",
    "evaluate_box_file",
    "evaluate_checkpoint",
    "evaluate_images",
    "EvalWeightsError",
    "FaithFilesError",
    "Faithfulness",
    "FaithImage",
    "FaithJudge",
    "FaithTally",
    "FEATURE_NET_FILE",
    "FeatureExtractor",
    "FID",
    "find_images",
    "find_inception_weights",
    "GEOMETRIC_PREDICATES",
    "graphs_of_batch",
    "gt_boxes_by_image",
    "images_to_uint8",
    "inception_feature_extractor",
    "INCEPTION_FID_FILE",
    "INCEPTION_FID_URL",
    "INCEPTION_NAME",
    "InceptionScore",
    "layout_diversity",
    "layout_recall",
    "layout_recall_by_size",
    "LayoutQuality",
    "LayoutRecall",
    "LayoutScores",
    "load_box_file",
    "load_coco_detector",
    "load_detector",
    "load_eval_net",
    "load_images",
    "load_shipped_net",
    "lpips_backbone_file",
    "lpips_cache_file",
    "match_box_file",
    "match_detections",
    "MatchProblem",
    "MAX_SEARCH_NODES",
    "mean_class_box_recall",
    "mean_class_boxes",
    "mean_pixel_distance",
    "Metric",
    "METRICS",
    "object_boxes_of",
    "ObjectAccuracy",
    "paired_box_iou",
    "per_class_accuracy",
    "pinned_small_boxes",
    "PROTOCOLS",
    "read_graphs_file",
    "real_object_mask",
    "recall_from_iou",
    "register_metric",
    "relation_satisfaction",
    "relation_swap_graphs",
    "RelationSwap",
    "report_to_markdown",
    "rescore_feature_net",
    "resolve_attribute_classifier",
    "resolve_classifier",
    "resolve_detector",
    "resolve_feature_extractor",
    "save_detector",
    "save_eval_net",
    "scene_feature_extractor",
    "share_detector",
    "shipped_asset_dir",
    "shipped_detector",
    "SCENE_FEATURE_NET_NAME",
    "SceneDetector",
    "SceneFeatureNet",
    "score_box_file",
    "score_box_pairs",
    "score_faithfulness",
    "score_layouts",
    "score_relation_swap",
    "size_bins",
    "SMALL_OBJECT_AREA",
    "swap_case",
    "swap_diagnosis",
    "SwapCase",
    "TRAIN_COMMAND",
    "train_detector",
    "train_eval_nets",
    "unpinned",
    "write_box_file",
    "write_faithfulness_sheet",
    "write_protocol_graphs",
    "write_report",
]
