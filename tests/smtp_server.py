"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a thread, with faults on demand.

It listens on a free port, optionally with STARTTLS or implicit TLS (a
certificate from a test CA), AUTH PLAIN/LOGIN and PIPELINING (aiosmtpd reads
pipelined commands in turn; it only needs to offer it), records every message it
accepts (raw bytes and envelope), and can misbehave in the ways real servers
do: 451 or 550 for chosen recipients, a reply of choice to DATA, a dropped
connection after some messages, slow replies. ``Faults.on_event`` lets a test
act at an exact point of the protocol (the crash tests kill the client there).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Mode = Literal["plain", "starttls", "tls"]
StartServer = Callable[..., "SmtpServer"]  # the start_smtp_server fixture
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One accepted message, as it arrived."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    tls: bool
    login: str | None

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class Faults:
    """Misbehaviour to inject; counts of -1 mean "every time"."""

    temp_fail: dict[str, int] = field(default_factory=dict)  # recipient -> 451s to give
    perm_fail: set[str] = field(default_factory=set)  # recipients refused with 550
    data_replies: list[str] = field(default_factory=list)  # replies to DATA, used up in order
    drop_after: int | None = None  # per connection: drop at the MAIL after this many messages
    slow: dict[str, tuple[float, int]] = field(default_factory=dict)  # "MAIL"/"RCPT"/"DATA"
    on_event: Callable[[str, int], None] | None = None  # ("MAIL"|"RCPT"|"DATA"|"REPLIED", nth)


class Handler:
    """aiosmtpd hooks that record messages and apply :class:`Faults`."""

    def __init__(self, faults: Faults, *, pipelining: bool = False) -> None:
        self.faults = faults
        self.pipelining = pipelining
        self.received: list[Received] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._count("EHLO")
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        self._count("MAIL")
        drop_after = self.faults.drop_after
        if drop_after is not None and getattr(session, "accepted", 0) >= drop_after:
            assert server.transport is not None
            server.transport.abort()  # type: ignore[attr-defined]
            return "421 4.4.2 connection dropped on purpose"
        await self._maybe_slow("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        self._count("RCPT")
        await self._maybe_slow("RCPT")
        if address in self.faults.perm_fail:
            return f"550 5.1.1 <{address}>: no such user here"
        if self._use(self.faults.temp_fail, address):
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        nth = self._count("DATA")
        if self.faults.data_replies:
            return self.faults.data_replies.pop(0)
        assert isinstance(envelope.original_content, bytes)
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None  # type: ignore[union-attr]
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self.received.append(Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content,
                mail_options=tuple(envelope.mail_options),
                tls=tls,
                login=login,
            ))
        session.accepted = getattr(session, "accepted", 0) + 1  # type: ignore[attr-defined]
        await self._maybe_slow("DATA")
        if self.faults.on_event is not None:
            asyncio.get_running_loop().call_soon(self.faults.on_event, "REPLIED", nth)
        return f"250 2.0.0 OK queued as {nth}"

    def _count(self, event: str) -> int:
        with self._lock:
            self.counts[event] += 1
            nth = self.counts[event]
        if self.faults.on_event is not None:
            self.faults.on_event(event, nth)
        return nth

    def _use(self, budget: dict[str, int], name: str) -> bool:
        left = budget.get(name, 0)
        if left == 0:
            return False
        if left > 0:
            budget[name] = left - 1
        return True

    async def _maybe_slow(self, command: str) -> None:
        delay, times = self.faults.slow.get(command, (0.0, 0))
        if times == 0:
            return
        if times > 0:
            self.faults.slow[command] = (delay, times - 1)
        await asyncio.sleep(delay)


class SmtpServer:
    """aiosmtpd on ``127.0.0.1:<free port>`` in its own thread and event loop."""

    def __init__(
        self,
        *,
        mode: Mode = "plain",
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        exclude_auth: tuple[str, ...] = (),
        faults: Faults | None = None,
        smtputf8: bool = True,
        pipelining: bool = False,
    ) -> None:
        if mode != "plain" and tls_context is None:
            raise ValueError(f"mode {mode!r} needs a server TLS context")
        self.mode = mode
        self.faults = faults or Faults()
        self.handler = Handler(self.faults, pipelining=pipelining)
        self.host = HOST
        self.port = 0
        self.auth_attempts: list[str] = []
        self.connections = 0
        self._tls_context = tls_context
        self._credentials = credentials
        self._exclude_auth = exclude_auth
        self._smtputf8 = smtputf8
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def start(self) -> SmtpServer:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"test SMTP server did not start: {failure}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(loop.create_server(
                self._protocol, HOST, 0, ssl=self._tls_context if self.mode == "tls" else None
            ))
            self.port = server.sockets[0].getsockname()[1]
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            _cancel_all(loop)
            loop.close()

    def _protocol(self) -> SMTP:
        self.connections += 1
        starttls = self.mode == "starttls"
        with warnings.catch_warnings():  # AUTH over implicit TLS: aiosmtpd cannot tell it is TLS
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return self._smtp(starttls)

    def _smtp(self, starttls: bool) -> SMTP:
        return SMTP(
            self.handler,
            hostname="localhost",
            tls_context=self._tls_context if starttls else None,
            require_starttls=starttls,
            auth_required=self._credentials is not None,
            auth_require_tls=starttls,
            auth_exclude_mechanism=self._exclude_auth,
            authenticator=self._authenticate if self._credentials else None,
            enable_SMTPUTF8=self._smtputf8,
            timeout=30,
            loop=self._loop,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.auth_attempts.append(mechanism)
        assert self._credentials is not None
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._credentials
        ok = data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(BaseException):
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def sample_message(
    n: int,
    to: str | tuple[str, ...] = "",
    *,
    body: str = "",
    eight_bit: bool = False,
) -> EmailMessage:
    """A rendered announcement as the email adapter would hand it over (Message-ID set)."""
    recipients = ((to,) if to else ()) if isinstance(to, str) else to
    message = EmailMessage()
    message["From"] = "Reading Group <events@example.org>"
    message["To"] = ", ".join(recipients or (f"person{n}@example.net",))
    message["Subject"] = f"Session {n}: Middlemarch, chapters {n}-{n + 3}"
    message["Date"] = "Sat, 28 Nov 2026 12:00:00 +0000"
    message["Message-ID"] = f"<announcement.{n}.1@events.example.org>"
    text = body or f"Hello,\n\nSession {n} meets on Tuesday.\n.A line that starts with a dot.\n"
    if eight_bit:
        message.set_content(text + "Café, naïve, Ωμέγα.\n", cte="8bit")
    else:
        message.set_content(text)
    return message
