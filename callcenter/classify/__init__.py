"""Intent and order-number recognition for customer messages (Russian first, English too)."""

from callcenter.classify.classifier import Classifier, classify
from callcenter.classify.model import Classification, PatternError
from callcenter.classify.patterns import default_patterns

__all__ = ["Classification", "Classifier", "PatternError", "classify", "default_patterns"]
