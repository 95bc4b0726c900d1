"""Training stage: transformation networks, perceptual losses, ``stylize-train``."""
