"""The one error type xmempp raises for problems a person can fix (bad files, bad arguments)."""


class XMemPPError(ValueError):
    """A problem with the input, named in the message (the file, the frame, the limit)."""
