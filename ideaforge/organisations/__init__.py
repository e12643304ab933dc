"""Organisations and their memberships: cities, companies, universities, associations, labs."""
