"""Checklist item check kinds beyond the built-in ones in checklists.py: one module per kind, its model and its runner."""
