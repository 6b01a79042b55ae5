"""Shared plumbing for the ResNet50 transfer-learning notebooks.

The lessons live in ``notebooks/``; this package holds the code that several
notebooks would otherwise repeat (folder loading, weights resolution, feature
caching, seeds, plots, recording results). Importing it sets no seeds, changes
no logging and downloads nothing.
"""

from tlhelpers import heads
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
from tlhelpers.saving import export_for_serving, predict_file, save_and_reload
from tlhelpers.scaling import check_float32_output, configure_precision, get_strategy

__version__ = "0.1.0"

__all__ = [
    "DownloadError",
    "Features",
    "ImageFolder",
    "WeightsError",
    "build_base_model",
    "check_float32_output",
    "configure_precision",
    "heads",
    "download",
    "cached_features",
    "extraction_batch_size",
    "get_strategy",
    "load_image_folder",
    "plot_batch",
    "plot_heatmaps",
    "plot_histories",
    "plot_history",
    "record_results",
    "resolve_weights",
    "seed_everything",
    "unfreeze_from",
    "classification_table",
    "export_for_serving",
    "grad_cam",
    "plot_confusion_matrix",
    "plot_grad_cam",
    "plot_mistakes",
    "predict_dataset",
    "predict_file",
    "save_and_reload",
]
