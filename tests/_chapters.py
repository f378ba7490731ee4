"""Facts about the book's chapters that more than one test file checks."""

#: The chapters that teach an algorithm: each has at least one figure with sliders that moves
#: without a kernel.
ALGORITHM_CHAPTERS = (
    "03_gradient_descent",
    "04_momentum",
    "05_adaptive",
    "06_adam_family",
    "07_signs_averages_curvature",
    "08_memory_and_structure",
    "12_write_your_own",
)
