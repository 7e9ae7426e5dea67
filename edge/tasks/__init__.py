"""invoke collections of edge; the root tasks.py composes them."""
