"""Shared plumbing for the ResNet50 transfer-learning notebooks.

The lessons live in ``notebooks/``; this package holds the code that several
notebooks would otherwise repeat (folder loading, weights resolution, feature
caching, seeds, plots, recording results). Importing it sets no seeds, changes
no logging and downloads nothing.

The top level holds what the notebooks, examples, benchmarks and README use;
``tlhelpers.heads``, ``tlhelpers.finetune`` and ``tlhelpers.scaling`` hold the rest
of what notebooks 01-05 call, ``tlhelpers.kerashub`` what notebook 06 builds KerasHub's
ResNet-50 from.
"""

from tlhelpers import finetune, heads, kerashub, scaling
from tlhelpers.data import ImageFolder, load_image_folder
from tlhelpers.download import DownloadError, download
from tlhelpers.evaluation import classification_table, predict_dataset
from tlhelpers.features import Features, cached_features, extraction_batch_size
from tlhelpers.finetune import unfreeze_from
from tlhelpers.gradcam import grad_cam
from tlhelpers.model import WeightsError, build_base_model, resolve_weights
from tlhelpers.plots import (
    plot_batch,
    plot_confusion_matrix,
    plot_grad_cam,
    plot_heatmaps,
    plot_histories,
    plot_history,
    plot_mistakes,
)
from tlhelpers.runtime import record_results, seed_everything
from tlhelpers.saving import export_for_serving, predict_file
from tlhelpers.scaling import check_float32_output, configure_precision, get_strategy

__version__ = "0.1.0"

__all__ = [
    # the data (notebook 01)
    "DownloadError", "ImageFolder", "download", "load_image_folder",
    # the base model (notebook 01) and its cached features (notebook 04)
    "WeightsError", "build_base_model", "resolve_weights", "Features", "cached_features", "extraction_batch_size",
    # the heads, fine-tuning and more than one device (notebooks 01-05)
    "heads", "finetune", "unfreeze_from", "scaling", "get_strategy", "configure_precision", "check_float32_output",
    # KerasHub's ResNet-50 without a download (notebook 06)
    "kerashub",
    # evaluating and explaining (notebook 01)
    "predict_dataset", "classification_table", "grad_cam", "predict_file", "export_for_serving",
    # figures (notebooks 01-04)
    "plot_batch", "plot_history", "plot_histories", "plot_heatmaps", "plot_confusion_matrix", "plot_mistakes",
    "plot_grad_cam",
    # seeds and results (every notebook)
    "seed_everything", "record_results",
]
