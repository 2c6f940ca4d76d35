"""Semantic types: what the data means, independent of how it is stored."""
from q2_types.feature_data import FeatureData

from q2_taxdistill._framework import plugin_api

SemanticType = plugin_api.SemanticType

SoftLabels = SemanticType("SoftLabels", variant_of=FeatureData.field["type"])
Embeddings = SemanticType("Embeddings", variant_of=FeatureData.field["type"])
StudentModel = SemanticType("StudentModel")
