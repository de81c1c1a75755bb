"""The one error type of the mapper package."""


class MappingError(ValueError):
    """A layer that cannot be mapped (e.g. no tile fits a buffer); names the level and a fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)
