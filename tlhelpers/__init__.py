"""Shared plumbing for the ResNet50 transfer-learning notebooks.

The lessons live in ``notebooks/``; this package holds the code that several
notebooks would otherwise repeat (folder loading, weights resolution, seeds,
plots, recording results). Importing it sets no seeds, changes no logging and
downloads nothing.
"""

from tlhelpers import heads
from tlhelpers.data import ImageFolder, load_image_folder
from tlhelpers.model import WeightsError, build_base_model, resolve_weights
from tlhelpers.plots import plot_batch, plot_heatmaps, plot_history
from tlhelpers.runtime import record_results, seed_everything

__version__ = "0.1.0"

__all__ = [
    "ImageFolder",
    "WeightsError",
    "build_base_model",
    "heads",
    "load_image_folder",
    "plot_batch",
    "plot_heatmaps",
    "plot_history",
    "record_results",
    "resolve_weights",
    "seed_everything",
]
