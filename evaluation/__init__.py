"""gensc.evaluation: SNR sweeps over modes, metrics and plots (``gensc eval``)."""
