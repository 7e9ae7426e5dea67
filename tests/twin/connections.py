"""Many connections at once, with selectors: how a twin server copes with a burst of clients."""

from __future__ import annotations

import selectors
import socket
import time


def connect_all(port: int, count: int) -> list[socket.socket]:
    """`count` non-blocking connections to 127.0.0.1:`port`, started at once (the handshakes still under way)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def connected_within(sockets: list[socket.socket], seconds: float) -> int:
    """How many of `sockets` finish their handshake within `seconds` (the kernel's doing: nothing need accept)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_WRITE)
    done, deadline = 0, time.monotonic() + seconds
    while done < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            selector.unregister(key.fileobj)
            done += 1
    selector.close()
    return done


def answered_within(port: int, count: int, seconds: float) -> int:
    """Opens `count` connections at once and sends `GET /_twin/health` on each; how many are answered in time."""
    request = f"GET /_twin/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    sockets = connect_all(port, count)
    for sock in sockets:
        selector.register(sock, selectors.EVENT_WRITE, b"")
    answered, deadline = 0, time.monotonic() + seconds
    while answered < count and time.monotonic() < deadline:
        for key, events in selector.select(timeout=0.05):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                sock.sendall(request)
                selector.modify(sock, selectors.EVENT_READ, b"")
                continue
            chunk = sock.recv(65536)
            received = key.data + chunk
            if b'"ok"' in received:
                answered += 1
            if b'"ok"' in received or not chunk:
                selector.unregister(sock)
            else:
                selector.modify(sock, selectors.EVENT_READ, received)
    selector.close()
    for sock in sockets:
        sock.close()
    return answered
