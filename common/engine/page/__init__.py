"""One page made ready for tesseract and read: analysed, straightened, cleaned, its words mapped back."""
