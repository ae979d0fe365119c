"""The TFDS data sets the pipelines know: names, how each maps onto a TFDS builder, how to prepare it.

Example:
  >>> SPECS['imagenet200'].num_classes, SPECS['cifar10'].eval_split
  (200, 'test')
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal


DatasetName = Literal["imagenet2012", "imagenet2012_subset/10pct", "imagenet200", "imagenet_per_class", "imagenet_a",
                      "cifar10"]
DATASET_NAMES: tuple[str, ...] = ("imagenet2012", "imagenet2012_subset/10pct", "imagenet200", "imagenet_per_class",
                                  "imagenet_a", "cifar10")

# The 200 ImageNet-A classes (Hendrycks et al., "Natural Adversarial Examples", 2021): WordNet ids in
# ImageNet-1k label order, and their indices in the 1000 classes. Taken from the ImageNet-A evaluation code's
# `indices_in_1k` (hendrycks/natural-adv-examples) as copied in several public repositories, and checked
# here against TFDS's imagenet2012 labels.txt: IMAGENET_A_INDICES_IN_1K[i] == labels.index(IMAGENET_A_WNIDS[i])
# (tests/test_data_tfds.py re-checks it). ImageNet-200 label i is ImageNet-1k label IMAGENET_A_INDICES_IN_1K[i].
IMAGENET_A_WNIDS: tuple[str, ...] = (
    "n01498041", "n01531178", "n01534433", "n01558993", "n01580077", "n01614925", "n01616318", "n01631663",
    "n01641577", "n01669191", "n01677366", "n01687978", "n01694178", "n01698640", "n01735189", "n01770081",
    "n01770393", "n01774750", "n01784675", "n01819313", "n01820546", "n01833805", "n01843383", "n01847000",
    "n01855672", "n01882714", "n01910747", "n01914609", "n01924916", "n01944390", "n01985128", "n01986214",
    "n02007558", "n02009912", "n02037110", "n02051845", "n02077923", "n02085620", "n02099601", "n02106550",
    "n02106662", "n02110958", "n02119022", "n02123394", "n02127052", "n02129165", "n02133161", "n02137549",
    "n02165456", "n02174001", "n02177972", "n02190166", "n02206856", "n02219486", "n02226429", "n02231487",
    "n02233338", "n02236044", "n02259212", "n02268443", "n02279972", "n02280649", "n02281787", "n02317335",
    "n02325366", "n02346627", "n02356798", "n02361337", "n02410509", "n02445715", "n02454379", "n02486410",
    "n02492035", "n02504458", "n02655020", "n02669723", "n02672831", "n02676566", "n02690373", "n02701002",
    "n02730930", "n02777292", "n02782093", "n02787622", "n02793495", "n02797295", "n02802426", "n02814860",
    "n02815834", "n02837789", "n02879718", "n02883205", "n02895154", "n02906734", "n02948072", "n02951358",
    "n02980441", "n02992211", "n02999410", "n03014705", "n03026506", "n03124043", "n03125729", "n03187595",
    "n03196217", "n03223299", "n03250847", "n03255030", "n03291819", "n03325584", "n03355925", "n03384352",
    "n03388043", "n03417042", "n03443371", "n03444034", "n03445924", "n03452741", "n03483316", "n03584829",
    "n03590841", "n03594945", "n03617480", "n03666591", "n03670208", "n03717622", "n03720891", "n03721384",
    "n03724870", "n03775071", "n03788195", "n03804744", "n03837869", "n03840681", "n03854065", "n03888257",
    "n03891332", "n03935335", "n03982430", "n04019541", "n04033901", "n04039381", "n04067472", "n04086273",
    "n04099969", "n04118538", "n04131690", "n04133789", "n04141076", "n04146614", "n04147183", "n04179913",
    "n04208210", "n04235860", "n04252077", "n04252225", "n04254120", "n04270147", "n04275548", "n04310018",
    "n04317175", "n04344873", "n04347754", "n04355338", "n04366367", "n04376876", "n04389033", "n04399382",
    "n04442312", "n04456115", "n04482393", "n04507155", "n04509417", "n04532670", "n04540053", "n04554684",
    "n04562935", "n04591713", "n04606251", "n07583066", "n07695742", "n07697313", "n07697537", "n07714990",
    "n07718472", "n07720875", "n07734744", "n07749582", "n07753592", "n07760859", "n07768694", "n07831146",
    "n09229709", "n09246464", "n09472597", "n09835506", "n11879895", "n12057211", "n12144580", "n12267677",
)
IMAGENET_A_INDICES_IN_1K: tuple[int, ...] = (
    6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76, 79, 89, 90, 94, 96, 97, 99, 105, 107,
    108, 110, 113, 124, 125, 130, 132, 143, 144, 150, 151, 207, 234, 235, 254, 277, 283, 287, 291, 295, 298, 301,
    306, 307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324, 326, 327, 330, 334, 335, 336, 347, 361, 363,
    372, 378, 386, 397, 400, 401, 402, 404, 407, 411, 416, 417, 420, 425, 428, 430, 437, 438, 445, 456, 457, 461,
    462, 470, 472, 483, 486, 488, 492, 496, 514, 516, 528, 530, 539, 542, 543, 549, 552, 557, 561, 562, 569, 572,
    573, 575, 579, 589, 606, 607, 609, 614, 626, 627, 640, 641, 642, 643, 658, 668, 677, 682, 684, 687, 701, 704,
    719, 736, 746, 749, 752, 758, 763, 765, 768, 773, 774, 776, 779, 780, 786, 792, 797, 802, 803, 804, 813, 815,
    820, 823, 831, 833, 835, 839, 845, 847, 850, 859, 862, 870, 879, 880, 888, 890, 897, 900, 907, 913, 924, 932,
    933, 934, 937, 943, 945, 947, 951, 954, 956, 957, 959, 971, 972, 980, 981, 984, 986, 987, 988,
)

@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How a pipeline name maps onto TFDS.

  Attributes:
    tfds_name: the TFDS builder read.
    kind: ``'imagenet'`` (variable-size photos: crop + resize) or ``'cifar'`` (32x32).
    num_classes: labels after any remapping.
    eval_split: the TFDS split that ``'val'`` means.
    class_subset: ImageNet-1k classes kept (remapped to 0..len-1 in this order); None keeps all.
    per_class: whether ``images_per_class`` selects N training images per class.
  """

  tfds_name: str
  kind: Literal["imagenet", "cifar"]
  num_classes: int
  eval_split: str
  class_subset: tuple[int, ...] | None = None
  per_class: bool = False


SPECS: dict[str, DatasetSpec] = {
    "imagenet2012": DatasetSpec("imagenet2012", "imagenet", 1000, "validation"),
    "imagenet2012_subset/10pct": DatasetSpec("imagenet2012_subset/10pct", "imagenet", 1000, "validation"),
    "imagenet200": DatasetSpec("imagenet2012", "imagenet", 200, "validation", IMAGENET_A_INDICES_IN_1K),
    "imagenet_per_class": DatasetSpec("imagenet2012", "imagenet", 1000, "validation", per_class=True),
    # ImageNet-A itself (7,500 test images), with labels in ImageNet-200 order, to evaluate ImageNet-200 models.
    "imagenet_a": DatasetSpec("imagenet_a", "imagenet", 200, "test", IMAGENET_A_INDICES_IN_1K),
    "cifar10": DatasetSpec("cifar10", "cifar", 10, "test"),
}


def check_name(name: str) -> DatasetSpec:
  """The spec of data set ``name``; ValueError listing the accepted names otherwise."""
  if name not in SPECS:
    raise ValueError(f"name={name!r} is not a data set; accepted values: {', '.join(map(repr, DATASET_NAMES))}.")
  return SPECS[name]


def default_data_dir(data_dir: str | None = None) -> str:
  """Where TFDS looks: ``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def prepare_instructions(name: str, data_dir: str | None = None) -> str:
  """The exact commands that prepare data set ``name`` for ``tfds.data_source`` (array_record format)."""
  spec = check_name(name)
  data_dir = default_data_dir(data_dir)
  manual_dir = os.path.join(data_dir, "downloads", "manual")
  tf_note = ("Preparing needs TensorFlow once (pip install tensorflow-cpu tensorflow-datasets); reading the "
             "prepared files does not.")
  if spec.tfds_name == "cifar10":
    return (f"{tf_note}\n  tfds build cifar10 --file_format=array_record --data_dir={data_dir}\n"
            "(downloads the archive from https://www.cs.toronto.edu/~kriz/cifar.html itself).")
  if spec.tfds_name == "imagenet_a":
    return (f"{tf_note}\n  tfds build imagenet_a --file_format=array_record --data_dir={data_dir}\n"
            "(downloads imagenet-a.tar itself).")
  return (f"{tf_note}\n"
          "1. Download ILSVRC2012_img_train.tar (138 GB) and ILSVRC2012_img_val.tar (6.3 GB) from "
          "https://image-net.org/download-images (free account, terms of access) into\n"
          f"     {manual_dir}\n"
          f"2. tfds build {spec.tfds_name} --file_format=array_record --manual_dir={manual_dir} "
          f"--data_dir={data_dir}\n"
          f"(one build serves imagenet2012, imagenet200 and imagenet_per_class; imagenet2012_subset/10pct is "
          "its own build from the same tarballs).")


__all__ = ["DatasetName", "DATASET_NAMES", "IMAGENET_A_WNIDS", "IMAGENET_A_INDICES_IN_1K", "DatasetSpec", "SPECS",
           "check_name", "default_data_dir", "prepare_instructions"]
