"""The XRP Ledger's formats: addresses, accounts and books a transaction touches, CTIDs,
ledger data, stream messages as events, a node's identity, book pages.

Plain functions and Structs over JSON values, with no I/O; they import only the standard
library, msgspec and :mod:`hub.wire` (its error table).
"""
