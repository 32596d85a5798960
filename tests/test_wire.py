"""The judge's wire (verify/wire.py): whatever the candidate's end does to the socket is a WireError, which the judge
turns into the candidate's failure, never an exception of its own."""

from __future__ import annotations

import socket

import pytest

from kernelagent.verify import wire


def test_a_peer_that_resets_the_connection_is_a_wire_error() -> None:
    judge, candidate = socket.socketpair()
    wire.send(judge, {"event": "draw"})  # left unread in the candidate's queue
    candidate.close()  # closing with unread data resets the connection: recv gets ECONNRESET
    with pytest.raises(wire.WireError, match="broke the connection|hung up"):
        wire.receive(judge, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES)


def test_oversized_and_malformed_messages_are_wire_errors() -> None:
    judge, candidate = socket.socketpair()
    wire.send(candidate, {"event": "x" * 100})
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.receive(judge, limit=50)
    judge, candidate = socket.socketpair()  # after an oversized header the session ends: a fresh pair
    candidate.sendall(wire._HEADER.pack(3) + b"{{{")
    with pytest.raises(wire.WireError, match="malformed"):
        wire.receive(judge, limit=1000)


def test_deeply_nested_json_is_a_wire_error() -> None:
    judge, candidate = socket.socketpair()
    body = b"[" * 60000 + b"]" * 60000
    candidate.sendall(wire._HEADER.pack(len(body)) + body)
    with pytest.raises(wire.WireError, match="malformed"):
        wire.receive(judge, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES)


def test_a_lent_memfd_cannot_be_shrunk_or_grown_by_the_borrower() -> None:
    import os

    import torch

    lender = wire.SharedTensors()
    buffer, descriptor, fds = lender.allocate([1024], torch.float32, "cpu")
    buffer.fill_(1.0)
    (fd,) = fds
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 0)  # what a candidate did to kill the judge with SIGBUS
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 1 << 20)
    borrowed = wire.map_tensor(descriptor, [fd], [])
    borrowed.fill_(2.0)  # writing stays allowed: outputs come back this way
    assert float(buffer.sum()) == 2048.0
