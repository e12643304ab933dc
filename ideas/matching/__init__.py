"""Matching ideas to experts (``experts``: services, ``expert_views``: pages) and challenges to partners."""
