"""Ideas: submissions, votes, comments, moderation, duplicates and jury scoring."""
