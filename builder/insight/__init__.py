"""What the app tells about a design: the per-layer report, receptive fields and the Advisor's Inception-v3 design principles."""
