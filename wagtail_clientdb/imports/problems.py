class FileProblem(Exception):
    """A file that cannot be imported; the message is for the user."""
