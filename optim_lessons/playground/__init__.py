"""The book's figures and toys: 2D test surfaces, plots, animations, explorers, the puzzle."""
