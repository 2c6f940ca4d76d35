"""Semantic types: what the data means, independent of how it is stored."""
from qiime2.plugin import SemanticType
from q2_types.feature_data import FeatureData

SoftLabels = SemanticType("SoftLabels", variant_of=FeatureData.field["type"])
Embeddings = SemanticType("Embeddings", variant_of=FeatureData.field["type"])
StudentModel = SemanticType("StudentModel")
