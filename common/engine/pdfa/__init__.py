"""The searchable PDF made PDF/A-2b where it can be, and an honest no where it cannot."""
