"""The book's figures and toys: 2D test surfaces, plots and animations, live explorers, the puzzle."""
