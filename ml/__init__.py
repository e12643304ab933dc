"""Pure machine-learning library (embedders, vector index, scoring, matching).

Imports nothing from the other IdeaForge packages.
"""
