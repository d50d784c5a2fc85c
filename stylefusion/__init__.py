"""StyleFusion: fast (Johnson) and iterative (Gatys) neural style transfer."""

__version__ = "0.1.0"
