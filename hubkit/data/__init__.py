"""Training data: the study's dataset registry, record converters and reproducible sampling."""

from .loading import SourceInfo, TrainingData, load_training_data
from .registry import REGISTRY, STUDY_SETS, DatasetEntry, Source, members

__all__ = ["REGISTRY", "STUDY_SETS", "DatasetEntry", "Source", "SourceInfo", "TrainingData", "load_training_data",
           "members"]
