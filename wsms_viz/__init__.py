"""wsms-viz: WSMS-Net (Takahashi, Matsubara and Uehara) to train, measure and look into."""

__version__ = "0.1.0"
