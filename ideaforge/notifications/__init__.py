"""Follows and notifications: the bell in the header, and the same news by email after commit."""
