"""Trained models shipped with listener (weights live beside the code, no download)."""

from listener.models.sentiment import SentimentModel, clause_around

__all__ = ["SentimentModel", "clause_around"]
