"""Web plumbing shared by every domain: templating, sessions, security, errors, forms."""
