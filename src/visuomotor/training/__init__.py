"""Training (torch): the networks from the source documents and the export to a bundle."""
