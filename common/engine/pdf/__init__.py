"""A PDF's structure and its searchable version: pages, stored images, text layers, the overlay."""
