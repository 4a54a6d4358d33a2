"""The steward console (``/console``): Jinja2 templates, plain JS, sessions from API keys."""
