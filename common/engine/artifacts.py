"""Names of the files an engine run leaves in its artifacts folder, known to the engine and to whoever stores them."""

# The merged searchable PDF; an engine may write it whole itself (a PDF's text layers laid over the original).
SEARCHABLE_PDF_NAME = "searchable.pdf"
