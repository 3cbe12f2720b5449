"""The one table of error tokens, codes and messages, and the exception that carries one.

Tokens and codes follow rippled's ErrorCodes table; ``badSyntax``, ``invalid_API_version``
and ``missingCommand`` follow Clio, which always sends a code and a message.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple


class ErrorInfo(NamedTuple):
    code: int
    message: str


ERRORS: Final[dict[str, ErrorInfo]] = {
    "badSyntax": ErrorInfo(1, "Syntax error."),
    "forbidden": ErrorInfo(3, "Bad credentials."),
    "noPermission": ErrorInfo(6, "You don't have permission for this command."),
    "tooBusy": ErrorInfo(9, "The server is too busy to help you now."),
    "slowDown": ErrorInfo(10, "You are placing too much load on the server."),
    "lgrNotFound": ErrorInfo(21, "Ledger not found."),
    "txnNotFound": ErrorInfo(29, "Transaction not found."),
    "invalidParams": ErrorInfo(31, "Invalid parameters."),
    "unknownCmd": ErrorInfo(32, "Unknown method."),
    "actMalformed": ErrorInfo(35, "Account malformed."),
    "badIssuer": ErrorInfo(41, "Issuer account malformed."),
    "badMarket": ErrorInfo(42, "No such market."),
    "dstAmtMalformed": ErrorInfo(51, "Destination amount/currency/issuer is malformed."),
    "dstIsrMalformed": ErrorInfo(53, "Destination issuer is malformed."),
    "srcCurMalformed": ErrorInfo(69, "Source currency is malformed."),
    "srcIsrMalformed": ErrorInfo(70, "Source issuer is malformed."),
    "malformedStream": ErrorInfo(71, "Stream malformed."),
    "internal": ErrorInfo(73, "Internal error."),
    "notSupported": ErrorInfo(75, "Operation not supported."),
    "failedToForward": ErrorInfo(90, "Failed to forward request to p2p node"),
    "domainMalformed": ErrorInfo(97, "Domain is malformed."),
    "invalid_API_version": ErrorInfo(6000, "Invalid API version."),
    "missingCommand": ErrorInfo(6001, "Method is not specified or is not a string."),
}


class RPCError(Exception):
    """A request failed with one of the tokens of :data:`ERRORS`.

    ``message`` replaces the table's generic text when the caller knows more (which field,
    which index); ``extra`` adds fields to the error reply, such as the oldest ledger a
    resume could start from.
    """

    def __init__(self, token: str, message: str | None = None, **extra: Any) -> None:
        info = ERRORS[token]
        self.token = token
        self.code = info.code
        self.message = message or info.message
        self.extra = extra
        super().__init__(f"{token}: {self.message}")
