"""IdeaForge core: composition root, settings, database, accounts, organisations, web plumbing."""
