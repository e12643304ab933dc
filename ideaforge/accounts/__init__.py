"""Accounts: users, passwords, sessions, API tokens, profiles."""
