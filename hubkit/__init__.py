"""hubkit: train many SFT variants, publish every one to the Hugging Face Hub with a complete card,
browse them on a leaderboard, and pull them back for analysis."""

__version__ = "0.1.0"
