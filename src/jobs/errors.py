"""The errors a run can end with, each with its own exit code (see the README)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USAGE = 2
EXIT_INPUT_ERROR = 3
EXIT_CONTRACT_VIOLATION = 4
EXIT_PUBLISH_ERROR = 5
EXIT_OUTPUT_BUSY = 6


class CustomerActivityError(Exception):
    """A failure the job explains itself; the message is meant for a person."""

    exit_code = EXIT_INTERNAL_ERROR


class InputError(CustomerActivityError):
    """An input table is missing, unreadable, or lacks a usable column."""

    exit_code = EXIT_INPUT_ERROR


class ConfigurationError(CustomerActivityError):
    """A parameter is invalid (a date, an identifier, a path)."""

    exit_code = EXIT_USAGE


class ContractDefinitionError(CustomerActivityError):
    """The contract file itself is broken or does not fit what the job produces."""

    exit_code = EXIT_CONTRACT_VIOLATION


class ContractViolationError(CustomerActivityError):
    """The candidate output breaks the contract; nothing was published."""

    exit_code = EXIT_CONTRACT_VIOLATION

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(
            "the candidate output breaks the data contract; the published output was left as it was:\n"
            + "\n".join(f"  - {failure}" for failure in failures)
        )


class ChangeRefusedError(CustomerActivityError):
    """The candidate meets the contract but differs from the published table beyond the change limits."""

    exit_code = EXIT_CONTRACT_VIOLATION


class PublishError(CustomerActivityError):
    """The marketplace refused a document or could not be reached."""

    exit_code = EXIT_PUBLISH_ERROR


class OutputBusyError(CustomerActivityError):
    """Another build holds the output, or changed it while this one ran; nothing was published."""

    exit_code = EXIT_OUTPUT_BUSY


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
