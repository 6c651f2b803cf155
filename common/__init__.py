"""Shared package of the OCR functions: settings, adapters for each backing service, and the job rules."""
