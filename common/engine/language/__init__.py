"""OCR languages: which are installed, and which a page is written in (lang=auto)."""
