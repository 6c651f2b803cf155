"""The pipeline's rules: documents, job lifecycle, status, listing, events, the ocr-process recipe."""
