"""The exceptions that reach the user as a sentence and an exit status instead of a traceback."""

import re
import signal

LONGEST_WORD = 200  # characters; longer paths are rare, longer echoed values are not sentences
_LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")


class UserError(Exception):
    """Bad input from the user: a config value, a path, a file.

    The command line prints ``str(error)`` (one sentence saying what is wrong and what to do)
    and exits with status 2. Raise it at the boundary where the input is first read, never
    from deep inside a numerical routine. Any run of more than :data:`LONGEST_WORD`
    non-space characters in the message (a 5,000-character name echoed back) is cut, with
    its length, so the sentence stays readable.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(_LONG_WORD.sub(lambda m: shown(m.group(), LONGEST_WORD), str(message)))


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept. Exit status 3."""


class TrainingCollapsed(TrainingDiverged):
    """The embeddings collapsed and ``--on-collapse stop`` ended the run. Exit status 3."""


class PeerLost(Exception):
    """Under torchrun, a collective failed because another rank stopped. Exit status 1.

    The other rank's own error is the cause; this one only says why this rank stops too.
    """


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal ``signum``: SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice).

    Exit status 128 + signum (130, 143), the shell's convention. The training loop raises it at
    a step boundary with a checkpoint saved, or on a second signal mid-step with the last
    checkpoint kept; outside the loop a SIGTERM raises it where the program is, so every
    ``finally`` runs (``run.json`` says "interrupted", temporary files are removed).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def shown(value: object, limit: int = 60) -> str:
    """``value`` as text for an error sentence, cut to ``limit`` characters with its length.

    A 100,000-character option value would otherwise be echoed whole into the message.
    """
    text = str(value)
    return text if len(text) <= limit else f"{text[:40]}… ({len(text):,} characters)"
