"""The back end: the lowered graph as PyTorch module source (codegen) and that source executed (compiler)."""
