"""Visual Lab application shell: main window, CLI, workers, export, sessions. Knows no domain."""

__version__ = "0.1.0"
