"""Train the evaluation networks on a dataset's real images and ship them.

Trains, on the train split:
  * SceneFeatureNet: whole images -> which object classes are present (multi-label); its
    penultimate features give FID and its softmax gives IS on the procedural scenes;
  * CropClassifier: ground-truth object crops (roi_align) -> object class (Grid2Im's
    classification-accuracy protocol),
  * AttributeClassifier (datasets with attributes): crops of the objects whose class comes in
    several colours -> the colour (``sg2img evaluate --metrics attr_acc attr_swap``),
  * SceneDetector (``--nets detector``, not in the default set: about an hour on 2 CPU cores):
    FCOS boxes of every class, stuff included, for the faithfulness metric; it checkpoints to
    ``--detector-checkpoint`` and goes on from there with ``--resume``,
then reports held-out accuracy on the val split and writes ``scene_feature_net.pt``,
``crop_classifier.pt``, ``attribute_classifier.pt``, ``detector.pt`` and ``meta.json`` to
``--out`` (``--nets`` picks which; meta.json keeps the entries of the nets not retrained).

    python scripts/train_eval_nets.py --data data/shapes64 --out sg2img/assets/eval
    python scripts/train_eval_nets.py --data /work/ext/shapes64_attr --out sg2img/assets/eval \
        --nets attributes
    python scripts/train_eval_nets.py --data data/shapes64 --out sg2img/assets/eval \
        --nets detector --threads 2
    python scripts/train_eval_nets.py --data data/shapes128 --image-size 128 \
        --out sg2img/assets/eval128 --nets detector --detector-from 64

Small nets, CPU, one thread by default: a few minutes on the procedural scenes. The training
is :func:`sg2img.eval.train_eval_nets` (and :func:`sg2img.eval.train_detector`); this script
builds the splits and prints their log.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

import torch

from sg2img.eval import (
    EVAL_NET_KINDS,
    DetectorTraining,
    EvalNetTraining,
    detector_arch,
    rescore_feature_net,
    share_detector,
    train_detector,
    train_eval_nets,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset root (COCO-Stuff layout)")
    p.add_argument("--dataset", default="coco", choices=("coco", "vg"))
    p.add_argument("--out", required=True,
                   help="output folder; sg2img/assets/eval ships the procedural-scene nets")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--crop-size", type=int, default=32)
    p.add_argument("--feature-epochs", type=int, default=8)
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--attribute-epochs", type=int, default=6)
    p.add_argument("--nets", nargs="+", default=list(EVAL_NET_KINDS),
                   choices=(*EVAL_NET_KINDS, "detector"),
                   help="which networks to train (attributes only on datasets with "
                        "attributes; detector only when named)")
    p.add_argument("--attribute-labels", nargs="+", default=None, metavar="NAME",
                   help="what the attribute classifier names (default: the procedural "
                        "scenes' colours)")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-train", type=int, default=None, help="use at most this many images")
    p.add_argument("--max-val", type=int, default=None)
    p.add_argument("--detector-steps", type=int, default=DetectorTraining.steps)
    p.add_argument("--detector-batch-size", type=int, default=DetectorTraining.batch_size)
    p.add_argument("--detector-lr", type=float, default=DetectorTraining.lr)
    p.add_argument("--detector-head-convs", type=int, default=2,
                   help="3x3 convs per FCOS head branch")
    p.add_argument("--detector-checkpoint", default="runs/eval_nets/detector_checkpoint.pt",
                   help="where the detector training checkpoints (every few minutes)")
    p.add_argument("--detector-minutes", type=float, default=None,
                   help="stop the detector training early after this many minutes")
    p.add_argument("--detector-from", type=int, default=None, metavar="SIZE",
                   help="with --nets detector: instead of training one, use the detector "
                        "shipped for SIZE px images, its threshold chosen on this data's val "
                        "split (recorded in --out's meta.json)")
    p.add_argument("--rescore", action="store_true",
                   help="train nothing: recompute the reference scores of the feature net "
                        "in --out on --data (train, val and test splits) into its meta.json")
    p.add_argument("--resume", action="store_true",
                   help="go on from --detector-checkpoint when it exists")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)     # the training's log lines, as printed
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("sg2img.eval")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset

    data_cfg = DataConfig(dataset=args.dataset, root=args.data)
    t0 = time.time()
    train_set = build_dataset(data_cfg, "train", args.image_size, 16)
    val_set = build_dataset(data_cfg, "val", args.image_size, 16)
    try:   # the FID floor (val against test) is read from the test split, where there is one
        test_set = build_dataset(data_cfg, "test", args.image_size, 16)
    except FileNotFoundError:
        test_set = None
    command = "python scripts/train_eval_nets.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv)
    written = []
    if args.rescore:
        written += rescore_feature_net(train_set, val_set, args.out, test_set=test_set,
                                       seed=args.seed, command=command)
        print(f"wrote {', '.join(map(str, written))} (total {time.time() - t0:.0f} s)")
        return 0
    fast_nets = tuple(n for n in args.nets if n != "detector")
    options = EvalNetTraining(
        nets=fast_nets, image_size=args.image_size, crop_size=args.crop_size,
        feature_epochs=args.feature_epochs, classifier_epochs=args.classifier_epochs,
        attribute_epochs=args.attribute_epochs, attribute_labels=args.attribute_labels,
        width=args.width, batch_size=args.batch_size, lr=args.lr, max_train=args.max_train,
        max_val=args.max_val, seed=args.seed)
    provenance = {"data": str(args.data), "dataset": args.dataset, "command": command}
    if fast_nets:
        written += train_eval_nets(train_set, val_set, args.out, options, provenance=provenance,
                                   test_set=test_set)
    if "detector" in args.nets and args.detector_from is not None:
        written += share_detector(val_set, args.out, args.detector_from,
                                  DetectorTraining(max_val=args.max_val, seed=args.seed),
                                  provenance=provenance)
    elif "detector" in args.nets:
        detector_options = DetectorTraining(
            steps=args.detector_steps, batch_size=args.detector_batch_size, lr=args.detector_lr,
            arch=detector_arch(head_convs=args.detector_head_convs), max_train=args.max_train,
            max_val=args.max_val, seed=args.seed,
            time_limit_s=None if args.detector_minutes is None else 60 * args.detector_minutes)
        written += train_detector(train_set, val_set, args.out, detector_options,
                                  checkpoint=args.detector_checkpoint, resume=args.resume,
                                  provenance={**provenance, "threads": args.threads})
    print(f"wrote {', '.join(map(str, written))} (total {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
