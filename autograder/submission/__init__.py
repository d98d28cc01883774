"""What a student hands in: files, a notebook, or a zip made by `autograder submit`."""
