"""The library's own exception type for errors a user can cause and fix."""


class CourseError(Exception):
    """A problem with the user's input (a path, a file, a notebook, an option).

    The message names the thing and says how to fix it; the command-line entry
    points print it without a traceback. Tracebacks are for bugs.
    """
