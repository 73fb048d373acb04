"""The ten RealUnify categories (``task_type`` values) and the axis each belongs to."""

from __future__ import annotations

UEG_CATEGORIES = (
    "world_knowledge",
    "commonsense_reasoning",
    "mathematical_reasoning",
    "logical_reasoning",
    "scientific_reasoning",
    "code_to_image",
)
GEU_CATEGORIES = (
    "mental_reconstruction",
    "mental_tracking",
    "attentional_focusing",
    "cognitive_navigation",
)
CATEGORIES_BY_AXIS = {"UEG": UEG_CATEGORIES, "GEU": GEU_CATEGORIES}
ALL_CATEGORIES = UEG_CATEGORIES + GEU_CATEGORIES
AXIS_OF_CATEGORY = {
    category: axis for axis, categories in CATEGORIES_BY_AXIS.items() for category in categories
}

CATEGORY_LABELS = {
    "world_knowledge": "World knowledge",
    "commonsense_reasoning": "Commonsense",
    "mathematical_reasoning": "Mathematics",
    "logical_reasoning": "Logic",
    "scientific_reasoning": "Science",
    "code_to_image": "Code to image",
    "mental_reconstruction": "Reconstruction",
    "mental_tracking": "Tracking",
    "attentional_focusing": "Attention",
    "cognitive_navigation": "Navigation",
}
