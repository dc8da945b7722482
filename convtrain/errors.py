"""The exceptions the library raises. The CLI turns them into one `Error:` line and exit 1."""


class ConvtrainError(Exception):
    """Base class: anything the user can fix (config, data, checkpoint, shapes)."""


class ConfigError(ConvtrainError):
    """A config file is malformed or names something that does not exist."""


class ShapeError(ConfigError):
    """A layer does not fit the shape that reaches it."""


class DataError(ConvtrainError):
    """A data set is missing, truncated, corrupt or does not fit the model."""


class CheckpointError(ConvtrainError):
    """A checkpoint is missing, truncated, of an unknown format or does not fit the model."""


class DivergenceError(ConvtrainError):
    """Training kept diverging after every allowed halving of the learning rate."""
