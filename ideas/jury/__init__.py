"""Jury: invitations, conflicts, assignment, scoring, calibrated results."""
