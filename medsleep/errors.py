"""The exceptions medsleep raises. The CLI maps each to a message and an exit code."""


class MedsleepError(Exception):
    """Root of every error medsleep raises on purpose."""


class StoreUnavailableError(MedsleepError):
    """The database cannot be reached or opened."""


class InputError(MedsleepError):
    """An input path or stream cannot be read at all."""


class PolicyError(MedsleepError):
    """The policy file is missing, malformed or inconsistent."""


class LockHeldError(MedsleepError):
    """Another consolidation holds the lock."""


class ArchiveError(MedsleepError):
    """An archive file is missing, unreadable or fails its checksum."""


class AuditChainBrokenError(MedsleepError):
    """The audit chain does not verify."""


class ScopeError(MedsleepError):
    """A request names no run or patient, or one this store has never held (a usage error)."""
