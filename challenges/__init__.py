"""Challenges: what an organisation launches, its phases, rules and jury criteria."""
