"""Reusable all-in-one components (pattern-matching ids from dash_app.ids)."""
