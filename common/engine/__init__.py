"""OCR: tesseract, PDF structure, images, hOCR, media types, and the one way to run a program."""
