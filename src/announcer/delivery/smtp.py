"""Handing outbox messages to an SMTP server: each one accepted once, or reported.

A few workers each keep one connection open and take messages from a shared
schedule, so thousands of per-recipient messages cost a handful of TLS
handshakes. The outbox marks a message ``sending`` (durably) before its DATA
goes out. A server that offers PIPELINING (RFC 2920, most do) gets MAIL,
RCPT... and DATA in one write after the mark, then the message: two round trips.
Otherwise each command waits for the reply to the one before, and the mark is
written while MAIL and RCPT travel. Then:

* a 4xx, a dropped connection or a timeout *before* the message itself went
  out: nothing was taken, so it is retried with exponential backoff, within
  ``max_retry_time``;
* a 5xx for one recipient: that recipient is refused, the others still get it;
* a reply to DATA or to the message: 250 is ``sent``, 5xx ``failed``, 4xx retried;
* no reply to the message (timeout, connection lost): the server may have it.
  It is ``in_doubt``, never silently re-sent;
* a rejected password or an untrusted certificate: the run stops at once, since
  every further message would fail the same way.

Credentials are read from the environment when connecting, never stored in the
settings, and never put in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import random
import ssl
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPException,
    SMTPReadTimeoutError,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)

from announcer.delivery.outbox import DeliveryRun, DeliveryStopped, Outbox, PlannedMessage
from announcer.errors import ConfigError

Security = Literal["starttls", "tls", "none"]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS: Mapping[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
MAX_BACKOFF = 60.0
MAX_REPLY_LINE = 8192  # bytes; longer, or more lines than MAX_LINES, is not a server reply
MAX_LINES = 100

# Failures that leave no doubt the server did not take the message (before it went out).
_LOST_CONNECTION = (SMTPException, OSError)


class SmtpConfigError(ConfigError):
    """SMTP settings that cannot be used safely."""


class SmtpAuthenticationError(DeliveryStopped):
    """The server rejected the username/password; no further message was tried."""


class SmtpTlsError(DeliveryStopped):
    """The server's certificate could not be verified, or TLS failed outright."""


class SmtpSetupError(DeliveryStopped):
    """The server or the environment lacks what the settings need (STARTTLS, AUTH, a variable)."""


class SmtpConfig(Protocol):
    """The shape of the ``smtp:`` settings read from announcer.yaml."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def username_env(self) -> str: ...
    @property
    def password_env(self) -> str: ...


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; credentials are named by environment variable, never held."""

    host: str
    port: int | None = None  # None: 587 for starttls, 465 for tls, 25 for none
    security: Security = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 30.0  # seconds for each reply
    pool_size: int = 2  # connections used at once
    rate_limit: float | None = None  # messages per second over all connections
    max_retry_time: float = 300.0  # seconds one message may keep being retried
    retry_delay: float = 1.0  # first backoff; it doubles each time
    local_hostname: str | None = None  # for EHLO; None asks the system

    def __post_init__(self) -> None:
        if self.security not in DEFAULT_PORTS:
            raise SmtpConfigError(
                f"SMTP security must be starttls, tls or none, not {self.security!r}"
            )
        if self.security == "none" and _bare_host(self.host) not in LOCAL_HOSTS:
            raise SmtpConfigError(
                f"refusing to send mail unencrypted to {self.host}: "
                "'security: none' is only allowed for localhost; use starttls or tls"
            )
        if bool(self.username_env) != bool(self.password_env):
            raise SmtpConfigError("set both username_env and password_env, or neither")
        for name in ("timeout", "pool_size", "max_retry_time", "retry_delay"):
            if getattr(self, name) <= 0:
                raise SmtpConfigError(f"SMTP {name} must be positive")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise SmtpConfigError("SMTP rate_limit must be positive (or unset)")

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @classmethod
    def from_config(cls, config: SmtpConfig) -> SmtpSettings:
        """Settings from announcer.yaml; tune the rest with ``dataclasses.replace``."""
        return cls(
            host=config.host,
            port=config.port,
            security=cast(Security, config.security),
            username_env=config.username_env or None,
            password_env=config.password_env or None,
        )


def _bare_host(host: str) -> str:
    return host.strip().strip("[]").lower()


class SmtpTransport:
    """Sends a run's messages over a small pool of reused SMTP connections."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``ssl_context`` may add trusted CAs (tests do); it must still verify certificates."""
        if ssl_context is not None and (
            ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
        ):
            raise SmtpConfigError("the TLS context must verify certificates and host names")
        self.settings = settings
        self._ssl_context = ssl_context
        self._environ = environ

    @property
    def name(self) -> str:
        return f"smtp {self.settings.host}:{self.settings.effective_port}"

    def reconcile(self, outbox: Outbox) -> list[str]:
        """SMTP gives no way to ask whether a message arrived: in-doubt stays in doubt."""
        return []

    async def send(self, run: DeliveryRun) -> None:
        if run.messages:
            await _Pool(self, run).run()

    async def connect(self) -> SMTP:
        """One connection, greeted, secured and logged in; errors are sorted for the pool."""
        credentials = self._credentials()
        settings = self.settings
        client = SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            validate_certs=True,
            tls_context=self._ssl_context,
            local_hostname=settings.local_hostname,
        )
        try:
            await client.connect()
            if credentials is not None:
                await _log_in(client, *credentials)
            if client.is_ehlo_or_helo_needed:  # extensions as offered over TLS
                await client.ehlo()
        except Exception as exc:
            _drop(client)
            raise self._connect_problem(exc, credentials) from None
        return client

    def _credentials(self) -> tuple[str, str] | None:
        settings = self.settings
        if not settings.username_env or not settings.password_env:
            return None
        environ = os.environ if self._environ is None else self._environ
        values = []
        names = ((settings.username_env, "username"), (settings.password_env, "password"))
        for name, what in names:
            value = environ.get(name)
            if value is None:
                raise SmtpSetupError(f"${name} is not set; it should hold the SMTP {what}")
            values.append(value)
        return values[0], values[1]

    def _connect_problem(self, exc: Exception, credentials: tuple[str, str] | None) -> Exception:
        """Sort a failure to connect into fatal (stop the run) or transient (try again)."""
        where = f"{self.settings.host}:{self.settings.effective_port}"
        problem = _fatal_connect_problem(exc, where, self.settings)
        if problem is None:
            problem = _Unavailable(_describe(exc))
        if credentials is not None:
            problem.args = tuple(_redact(str(arg), credentials[1]) for arg in problem.args)
        return problem


async def _log_in(client: SMTP, username: str, password: str) -> None:
    """AUTH once, with the best mechanism both sides know.

    ``SMTP.login`` would try every mechanism after a 535, turning one wrong
    password into several failed logins (and maybe a lockout).
    """
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    methods = client.supported_auth_methods
    if not methods:
        raise SMTPException("the server offers no AUTH mechanism announcer can use (PLAIN, LOGIN)")
    mechanisms = {
        "cram-md5": client.auth_crammd5,
        "plain": client.auth_plain,
        "login": client.auth_login,
    }
    await mechanisms[methods[0]](username, password)


def _fatal_connect_problem(exc: Exception, where: str, settings: SmtpSettings) -> Exception | None:
    tls = _tls_cause(exc)
    if tls is not None:
        return SmtpTlsError(_tls_message(tls, where, settings.host))
    if isinstance(exc, SMTPAuthenticationError) and exc.code >= 500:
        return SmtpAuthenticationError(
            f"SMTP server rejected the username/password from ${settings.username_env} and "
            f"${settings.password_env} ({exc.code} {exc.message}); check those variables"
        )
    if isinstance(exc, SMTPResponseException) and exc.code >= 500:
        return SmtpSetupError(f"{where} refused the session: {exc.code} {exc.message}")
    if isinstance(exc, SMTPException) and not _is_transport_failure(exc):
        return SmtpSetupError(f"{where}: {exc}")
    return None


def _is_transport_failure(exc: Exception) -> bool:
    if isinstance(exc, SMTPResponseException):
        return 400 <= exc.code < 500 or exc.code < 0
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


def _tls_cause(exc: BaseException | None) -> ssl.SSLError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _tls_message(error: ssl.SSLError, where: str, host: str) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or error.reason or str(error)
        return (
            f"the TLS certificate of {where} could not be verified ({reason}); it must be "
            f"valid for {host} and signed by a trusted authority"
        )
    return f"TLS with {where} failed ({error.reason or error}); check 'security' and 'port'"


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException) and exc.code > 0:
        return f"{exc.code} {exc.message}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, SMTPException) else f"{type(exc).__name__}: {text}"


def _reply_text(code: int, message: str) -> str:
    return f"{code} {message}"


class _Unavailable(Exception):
    """The server could not be reached or was busy: worth trying again."""


class _Unreachable(Exception):
    """A worker gave up reaching the server after ``max_retry_time``."""


class _Stopped(Exception):
    """The run stopped while this worker waited to connect."""


class _Refusal(Exception):
    """The server refused the transaction before DATA, so nothing was delivered."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


@dataclass(eq=False)
class _Job:
    message: PlannedMessage
    failures: int = 0
    first_failure: float | None = None
    retry_at: float | None = None
    refused: dict[str, str] = field(default_factory=dict)


class _Schedule:
    """Jobs ready now or after their backoff; tells idle workers when nothing more can come."""

    def __init__(self, jobs: Iterable[_Job]) -> None:
        self._heap = [(0.0, seq, job) for seq, job in enumerate(jobs)]
        self._seq = itertools.count(len(self._heap))
        self._in_flight = 0
        self._stopped = False
        self._wake = asyncio.Event()

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def take(self) -> _Job | None:
        loop = asyncio.get_running_loop()
        while not self._stopped:
            now = loop.time()
            if self._heap and self._heap[0][0] <= now:
                self._in_flight += 1
                job = heapq.heappop(self._heap)[2]
                job.retry_at = None
                return job
            if not self._heap and not self._in_flight:
                return None
            timeout = self._heap[0][0] - now if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        return None

    def finish(self, job: _Job) -> None:
        """Done with ``job`` for now; it comes back at ``job.retry_at`` if that is set."""
        self._in_flight -= 1
        if job.retry_at is not None:
            heapq.heappush(self._heap, (job.retry_at, next(self._seq), job))
        self._wake.set()

    def put_back(self, job: _Job) -> None:
        """``job`` was not attempted: keep it for another worker (or the report)."""
        job.retry_at = job.retry_at or 0.0
        self.finish(job)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def abandon(self) -> list[_Job]:
        jobs = [job for _, _, job in sorted(self._heap, key=lambda item: item[:2])]
        self._heap.clear()
        return jobs


class _RateLimiter:
    """Spaces message starts evenly across all workers."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class _Session(asyncio.Protocol):
    """The transactions of one connection, once aiosmtplib has greeted, secured and logged in.

    It takes the connection over because aiosmtplib reads one reply per command
    sent, and PIPELINING (RFC 2920) sends several commands at once. Replies are
    read in order; a timeout or a lost connection leaves the session unusable.
    """

    def __init__(self, client: SMTP, timeout: float) -> None:
        transport = client.transport
        if not isinstance(transport, asyncio.Transport) or transport.is_closing():
            raise _Unavailable("the connection closed as soon as it was set up")
        self.extensions = frozenset(client.esmtp_extensions)
        self._client = client
        self._transport = transport
        self._timeout = timeout
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._replies: deque[SMTPResponse] = deque()
        self._arrived: asyncio.Future[None] | None = None
        self._lost: SMTPException | None = None
        transport.set_protocol(self)

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.extensions

    @property
    def usable(self) -> bool:
        return self._lost is None and not self._transport.is_closing()

    def send(self, *data: bytes) -> None:
        """Write ``data`` (commands with their CRLF, or a message) in one go."""
        if not self.usable:
            raise self._lost or SMTPServerDisconnected("Connection lost")
        self._transport.write(b"".join(data))

    async def reply(self) -> SMTPResponse:
        """The next reply, in the order the commands went out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while not self._replies:
            if self._lost is not None:
                raise self._lost
            self._arrived = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._arrived
            except TimeoutError:
                self._fail(SMTPReadTimeoutError("Timed out waiting for server response"))
        return self._replies.popleft()

    async def command(self, line: bytes) -> SMTPResponse:
        self.send(line)
        return await self.reply()

    def close(self) -> None:
        self._fail(SMTPServerDisconnected("Connection closed"))
        _drop(self._client)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0 and self._lost is None:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            self._take(line)
        if len(self._buffer) > MAX_REPLY_LINE:
            self._fail(SMTPResponseException(-1, "Response too long"))
        self._wake()

    def eof_received(self) -> None:
        self._fail(SMTPServerDisconnected("Unexpected EOF received"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(SMTPServerDisconnected("Connection lost"))

    def _take(self, line: bytes) -> None:
        """One line of a reply; the last one (``250 ok``, not ``250-ok``) completes it."""
        if len(line) > MAX_REPLY_LINE or not line[:3].isdigit() or len(self._lines) > MAX_LINES:
            self._fail(SMTPResponseException(-1, f"Malformed SMTP response: {line[:80]!r}"))
            return
        self._lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            text = b"\n".join(self._lines).decode("utf-8", "surrogateescape")
            self._replies.append(SMTPResponse(int(line[:3]), text))
            self._lines = []

    def _fail(self, error: SMTPException) -> None:
        """The session is over: keep the first reason, close the connection, wake the reader."""
        if self._lost is None:
            self._lost = error
        self._transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)


class _Pool:
    """The workers of one run, their shared schedule, and why the run stopped, if it did."""

    def __init__(self, transport: SmtpTransport, run: DeliveryRun) -> None:
        self._transport = transport
        self._settings = transport.settings
        self._run = run
        self._schedule = _Schedule(_Job(message) for message in run.messages)
        self._limiter = _RateLimiter(self._settings.rate_limit)
        self._workers = min(self._settings.pool_size, len(run.messages))
        self._alive = self._workers
        self._proven = False  # has any connection worked yet?
        self._first = asyncio.Lock()
        self._stopped_by: DeliveryStopped | None = None
        self._unreachable: str | None = None

    async def run(self) -> None:
        results = await asyncio.gather(
            *(self._worker() for _ in range(self._workers)), return_exceptions=True
        )
        reason = self._stop_reason()
        for job in self._schedule.abandon():
            self._run.deferred(job.message, reason, attempted=False)
        if self._stopped_by is not None:
            raise self._stopped_by
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _stop_reason(self) -> str:
        if self._stopped_by is not None:
            return f"not tried: the run stopped ({self._stopped_by})"
        return self._unreachable or "not tried: the run stopped"

    async def _worker(self) -> None:
        session: _Session | None = None
        try:
            while (job := await self._schedule.take()) is not None:
                session = await self._serve(session, job)
        except DeliveryStopped as exc:
            self._stopped_by = self._stopped_by or exc
            self._schedule.stop()
        except _Unreachable as exc:  # after a first success, the others may still get through
            self._alive -= 1
            if not self._alive or not self._proven:
                self._unreachable = str(exc)
                self._schedule.stop()
        except _Stopped:
            pass
        except BaseException:
            self._schedule.stop()
            raise
        finally:
            if session is not None:
                await _quit(session)

    async def _serve(self, session: _Session | None, job: _Job) -> _Session | None:
        """Send one job, connecting first if needed; return the connection if still usable."""
        fresh = session is None
        try:
            if session is None:
                session = await self._connect()
            await self._limiter.wait()
            keep = await self._attempt(session, job)
        except BaseException:
            self._schedule.put_back(job)
            if fresh and session is not None:  # the worker does not know of it yet
                session.close()
            raise
        self._schedule.finish(job)
        if keep:
            return session
        session.close()
        return None

    async def _connect(self) -> _Session:
        """Connect; until one connection has worked, workers try one at a time.

        So a wrong password is offered once, not once per worker.
        """
        if self._proven:
            return await self._connect_retrying()
        async with self._first:
            if self._schedule.stopped:
                raise _Stopped
            session = await self._connect_retrying()
            self._proven = True
            return session

    async def _connect_retrying(self) -> _Session:
        loop = asyncio.get_running_loop()
        started, failures = loop.time(), 0
        while True:
            try:
                return _Session(await self._transport.connect(), self._settings.timeout)
            except _Unavailable as exc:
                failures += 1
                delay = self._backoff(failures)
                waited = loop.time() + delay - started
                if self._schedule.stopped or waited > self._settings.max_retry_time:
                    raise _Unreachable(f"could not reach {self._transport.name}: {exc}") from None
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        delay: float = min(self._settings.retry_delay * 2.0 ** (failures - 1), MAX_BACKOFF)
        return delay * random.uniform(0.5, 1.0)

    async def _attempt(self, session: _Session, job: _Job) -> bool:
        """One SMTP transaction; returns whether ``session`` can carry the next one."""
        if session.pipelining:
            return await self._attempt_pipelined(session, job)
        return await self._attempt_stepwise(session, job)

    async def _attempt_pipelined(self, session: _Session, job: _Job) -> bool:
        """Once ``sending`` is on disk, MAIL, RCPT... and DATA in one write, then the message.

        Two round trips per message. Should DATA be accepted while the envelope
        was not, the connection is dropped before any of the message goes out.
        """
        message = job.message
        await self._run.begin(message, via=self._transport.name)
        recipients = [address for address in message.recipients if address not in job.refused]
        try:
            options, encoding = _mail_options(session, message)
            rcpt = [_rcpt_command(address, encoding) for address in recipients]
            session.send(_mail_command(message, options, encoding), *rcpt, b"DATA\r\n")
            mail = await session.reply()
            replies = [await session.reply() for _ in recipients]
            start = await session.reply()
        except BaseException as exc:
            return await self._not_handed_over(session, job, exc)
        try:
            accepted = self._judge_envelope(job, mail, zip(recipients, replies, strict=True))
        except BaseException as exc:
            if start.code == 354:
                session.close()
            return await self._not_handed_over(session, job, exc)
        if not accepted:
            if start.code == 354:
                session.close()
            return await self._all_refused(session, job)
        return await self._hand_over(session, job, start)

    async def _attempt_stepwise(self, session: _Session, job: _Job) -> bool:
        """MAIL, RCPT..., DATA and the message, each after the reply to the one before.

        The durable ``sending`` mark is written while MAIL and RCPT travel, and
        DATA waits for it, so the commit costs no extra round trip. A crash in
        between can only leave the message in doubt, never unrecorded.
        """
        marking = asyncio.create_task(self._run.begin(job.message, via=self._transport.name))
        try:
            accepted = await self._envelope(session, job)
        except BaseException as exc:
            await marking
            return await self._not_handed_over(session, job, exc)
        await marking
        if not accepted:
            return await self._all_refused(session, job)
        try:
            start = await session.command(b"DATA\r\n")
        except BaseException as exc:
            return await self._not_handed_over(session, job, exc)
        return await self._hand_over(session, job, start)

    async def _not_handed_over(self, session: _Session, job: _Job, exc: BaseException) -> bool:
        """The message itself never went out: retry, fail, or give it back."""
        if isinstance(exc, _Refusal):
            if exc.permanent:
                self._run.failed(job.message, str(exc), job.refused)
            else:
                self._retry(job, str(exc))
            return await _reset(session)
        if isinstance(exc, _LOST_CONNECTION):
            self._retry(job, _describe(exc))
            return False
        self._run.withdraw(job.message, f"not sent: {exc}")
        raise exc

    async def _all_refused(self, session: _Session, job: _Job) -> bool:
        """No recipient was accepted; the (first) refusal is the reply worth showing."""
        self._run.failed(job.message, next(iter(job.refused.values())), job.refused)
        return await _reset(session)

    async def _envelope(self, session: _Session, job: _Job) -> bool:
        """MAIL and RCPT; returns whether any recipient was accepted.

        Addresses were checked when planned, so they go out as they are.
        """
        message = job.message
        options, encoding = _mail_options(session, message)
        self._judge_mail(await session.command(_mail_command(message, options, encoding)))
        accepted = False
        for address in message.recipients:
            if address not in job.refused:
                reply = await session.command(_rcpt_command(address, encoding))
                accepted = self._judge_recipient(job, address, reply) or accepted
        return accepted

    def _judge_envelope(
        self, job: _Job, mail: SMTPResponse, replies: Iterable[tuple[str, SMTPResponse]]
    ) -> bool:
        """The replies to a pipelined MAIL and RCPTs, judged as ``_envelope`` judges them."""
        self._judge_mail(mail)
        accepted = False
        for address, reply in replies:
            accepted = self._judge_recipient(job, address, reply) or accepted
        return accepted

    def _judge_mail(self, reply: SMTPResponse) -> None:
        if reply.code != 250:
            raise self._refusal(reply.code, reply.message)

    def _judge_recipient(self, job: _Job, address: str, reply: SMTPResponse) -> bool:
        """True if accepted; a 5xx refuses this recipient, a 4xx the whole message for now."""
        if reply.code in (250, 251):
            return True
        refusal = self._refusal(reply.code, reply.message)
        if not refusal.permanent:
            raise refusal
        job.refused[address] = str(refusal)
        return False

    def _refusal(self, code: int, text: str) -> _Refusal:
        if code == 530:  # every message would meet it: a settings problem
            raise SmtpSetupError(
                f"{self._transport.name} requires authentication or TLS first ({code} {text}); "
                "check 'security', username_env and password_env"
            )
        return _Refusal(_reply_text(code, text), permanent=code >= 500)

    async def _hand_over(self, session: _Session, job: _Job, start: SMTPResponse) -> bool:
        """The message, once DATA had its 354; only the reply after it settles the message."""
        message = job.message
        if start.code != 354:
            return await self._refused_data(session, job, start)
        try:
            session.send(_dot_stuffed(message.raw), b".\r\n")
            reply = await session.reply()
        except _LOST_CONNECTION as exc:  # no reply: the message may or may not have arrived
            self._run.in_doubt(message, f"no reply to DATA: {_describe(exc)}")
            return False
        if reply.code != 250:
            return await self._refused_data(session, job, reply)
        self._run.sent(message, _reply_text(reply.code, reply.message), job.refused)
        return True

    async def _refused_data(self, session: _Session, job: _Job, reply: SMTPResponse) -> bool:
        """A definite "no" to DATA or to the message: the server did not take it."""
        text = _reply_text(reply.code, reply.message)
        if reply.code >= 500:
            self._run.failed(job.message, text, job.refused)
        else:
            self._retry(job, text)
        return await _reset(session)

    def _retry(self, job: _Job, reply: str) -> None:
        """Schedule another try after a backoff, or leave the message pending for a later run."""
        now = asyncio.get_running_loop().time()
        job.failures += 1
        job.first_failure = job.first_failure if job.first_failure is not None else now
        retry_at = now + self._backoff(job.failures)
        if self._schedule.stopped or retry_at - job.first_failure > self._settings.max_retry_time:
            job.retry_at = None
            self._run.deferred(job.message, f"gave up retrying for now: {reply}")
        else:
            job.retry_at = retry_at
            self._run.retrying(job.message, reply)


def _mail_command(message: PlannedMessage, options: Sequence[bytes], encoding: str) -> bytes:
    sender = b"MAIL FROM:<" + message.sender.encode(encoding) + b">"
    return b" ".join([sender, *options]) + b"\r\n"


def _rcpt_command(address: str, encoding: str) -> bytes:
    return b"RCPT TO:<" + address.encode(encoding) + b">\r\n"


def _dot_stuffed(raw: bytes) -> bytes:
    """Every line starting with a dot gets another (RFC 5321, 4.5.2).

    ``raw`` is in wire form already (CRLF, see ``wire_bytes``), so no line ends
    need fixing, as ``SMTP.data`` would do with two regex passes per message.
    """
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _mail_options(session: _Session, message: PlannedMessage) -> tuple[list[bytes], str]:
    """MAIL FROM parameters: SIZE, 8BITMIME for 8-bit bodies, SMTPUTF8 for UTF-8 headers."""
    offered = session.extensions
    options = [b"SIZE=%d" % len(message.raw)] if "size" in offered else []
    if not message.raw.isascii() and "8bitmime" in offered:
        options.append(b"BODY=8BITMIME")
    if _needs_smtputf8(message):
        if "smtputf8" not in offered:
            raise _Refusal(
                "the server does not support SMTPUTF8, which this message's addresses "
                "or headers need",
                permanent=True,
            )
        options.append(b"SMTPUTF8")
        return options, "utf-8"
    return options, "ascii"


def _needs_smtputf8(message: PlannedMessage) -> bool:
    addresses: Sequence[str] = (message.sender, *message.recipients)
    header = message.raw.partition(b"\r\n\r\n")[0]
    return not (header.isascii() and all(address.isascii() for address in addresses))


async def _reset(session: _Session) -> bool:
    """RSET after a refused transaction; False if the connection is no longer usable."""
    if session.usable:
        with contextlib.suppress(*_LOST_CONNECTION):
            if (await session.command(b"RSET\r\n")).code == 250:
                return True
    session.close()
    return False


async def _quit(session: _Session) -> None:
    """Say goodbye, then drop the connection whatever the server answered."""
    if session.usable:
        with contextlib.suppress(*_LOST_CONNECTION):
            await session.command(b"QUIT\r\n")
    session.close()


def _drop(client: SMTP) -> None:
    """Close at once: a graceful TLS shutdown waits for the peer and can outlive the run."""
    transport = client.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    client.close()
