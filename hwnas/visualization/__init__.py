"""Figures and the HTML report of a search study."""
