"""Models arrive with their issue; the app is installed to fix its place in the imports."""
