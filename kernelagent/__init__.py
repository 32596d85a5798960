"""KernelAgent: spec in, verified Triton kernel out."""
