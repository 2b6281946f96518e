"""cvgad: CVGAD (Bian et al., IEEE Access 7, 2019), a CVAE-GAN semi-supervised anomaly detector."""

__version__ = "0.1.0"
