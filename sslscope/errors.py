"""The one exception type that reaches the user as a sentence instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: a config value, a path, a file.

    The command line prints ``str(error)`` (one sentence saying what is wrong and what to do)
    and exits with status 2. Raise it at the boundary where the input is first read, never
    from deep inside a numerical routine.
    """


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept. Exit status 3."""


class PeerLost(Exception):
    """Under torchrun, a collective failed because another rank stopped. Exit status 1.

    The other rank's own error is the cause; this one only says why this rank stops too.
    """


def shown(value: object, limit: int = 60) -> str:
    """``value`` as text for an error sentence, cut to ``limit`` characters with its length.

    A 100,000-character option value would otherwise be echoed whole into the message.
    """
    text = str(value)
    return text if len(text) <= limit else f"{text[:40]}… ({len(text):,} characters)"
