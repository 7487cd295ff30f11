"""Handing outbox messages to an SMTP server: each one accepted once, or reported.

A few workers each keep one connection open and take messages from a shared
schedule, so thousands of per-recipient messages cost a handful of TLS
handshakes. Each transaction is MAIL, RCPT..., then the outbox marks the
message ``sending`` (durably) and only then DATA goes out:

* a 4xx, a dropped connection or a timeout *before* DATA: nothing was taken,
  so the message is retried with exponential backoff, within ``max_retry_time``;
* a 5xx for one recipient: that recipient is refused, the others still get it;
* a reply to DATA: 250 is ``sent``, 5xx ``failed``, 4xx retried;
* no reply to DATA (timeout, connection lost): the server may have the message.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPDataError,
    SMTPException,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from announcer.delivery.outbox import DeliveryRun, DeliveryStopped, Outbox, PlannedMessage
from announcer.errors import ConfigError

Security = Literal["starttls", "tls", "none"]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS: Mapping[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
MAX_BACKOFF = 60.0

# Failures that leave no doubt the server did not take the message (before DATA).
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
        client: SMTP | None = None
        try:
            while (job := await self._schedule.take()) is not None:
                client = await self._serve(client, job)
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
            if client is not None:
                await _quit(client, self._settings.timeout)

    async def _serve(self, client: SMTP | None, job: _Job) -> SMTP | None:
        """Send one job, connecting first if needed; return the connection if still usable."""
        try:
            if client is None:
                client = await self._connect()
            await self._limiter.wait()
            keep = await self._attempt(client, job)
        except BaseException:
            self._schedule.put_back(job)
            raise
        self._schedule.finish(job)
        if keep:
            return client
        _drop(client)
        return None

    async def _connect(self) -> SMTP:
        """Connect; until one connection has worked, workers try one at a time.

        So a wrong password is offered once, not once per worker.
        """
        if self._proven:
            return await self._connect_retrying()
        async with self._first:
            if self._schedule.stopped:
                raise _Stopped
            client = await self._connect_retrying()
            self._proven = True
            return client

    async def _connect_retrying(self) -> SMTP:
        loop = asyncio.get_running_loop()
        started, failures = loop.time(), 0
        while True:
            try:
                return await self._transport.connect()
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

    async def _attempt(self, client: SMTP, job: _Job) -> bool:
        """One SMTP transaction; returns whether ``client`` can carry the next one.

        The durable ``sending`` mark is written while MAIL and RCPT travel, and
        DATA waits for it, so the commit costs no extra round trip. A crash in
        between can only leave the message in doubt, never unrecorded.
        """
        marking = asyncio.create_task(self._run.begin(job.message, via=self._transport.name))
        try:
            accepted = await self._envelope(client, job)
        except BaseException as exc:
            await marking
            return await self._not_handed_over(client, job, exc)
        await marking
        if not accepted:  # the (first) refusal is the reply worth showing
            self._run.failed(job.message, next(iter(job.refused.values())), job.refused)
            return await _reset(client)
        return await self._hand_over(client, job)

    async def _not_handed_over(self, client: SMTP, job: _Job, exc: BaseException) -> bool:
        """MAIL or RCPT failed, so DATA never went out: retry, fail, or give it back."""
        if isinstance(exc, _Refusal):
            if exc.permanent:
                self._run.failed(job.message, str(exc), job.refused)
            else:
                self._retry(job, str(exc))
            return await _reset(client)
        if isinstance(exc, _LOST_CONNECTION):
            self._retry(job, _describe(exc))
            return False
        self._run.withdraw(job.message, f"not sent: {exc}")
        raise exc

    async def _envelope(self, client: SMTP, job: _Job) -> bool:
        """MAIL and RCPT; returns whether any recipient was accepted.

        Addresses were checked when planned, so they go out as they are.
        """
        message = job.message
        options, encoding = _mail_options(client, message)
        reply = await client.execute_command(
            b"MAIL", b"FROM:<" + message.sender.encode(encoding) + b">", *options
        )
        if reply.code != 250:
            raise self._refusal(reply.code, reply.message)
        accepted = False
        for address in message.recipients:
            if address not in job.refused:
                accepted = await self._recipient(client, job, address, encoding) or accepted
        return accepted

    async def _recipient(self, client: SMTP, job: _Job, address: str, encoding: str) -> bool:
        reply = await client.execute_command(b"RCPT", b"TO:<" + address.encode(encoding) + b">")
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

    async def _hand_over(self, client: SMTP, job: _Job) -> bool:
        """DATA, once ``sending`` is on disk; only a reply to it settles the message."""
        message = job.message
        try:
            response = await _data(client, message.raw, self._settings.timeout)
        except SMTPDataError as exc:  # a definite "no": the server did not take it
            if exc.code >= 500:
                self._run.failed(message, _reply_text(exc.code, exc.message), job.refused)
            else:
                self._retry(job, _reply_text(exc.code, exc.message))
            return client.is_connected and await _reset(client)
        except _LOST_CONNECTION as exc:  # no reply: the message may or may not have arrived
            self._run.in_doubt(message, f"no reply to DATA: {_describe(exc)}")
            return False
        self._run.sent(message, _reply_text(response.code, response.message), job.refused)
        return True

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


async def _data(client: SMTP, raw: bytes, timeout: float) -> SMTPResponse:
    """DATA, then ``raw`` dot-stuffed; raises ``SMTPDataError`` for any reply but 354 and 250.

    ``SMTP.data`` would run two regex passes over every message to fix line
    ends; a planned message is in wire form already (CRLF, see ``wire_bytes``).
    """
    start = await client.execute_command(b"DATA", timeout=timeout)
    if start.code != 354:
        raise SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(_dot_stuffed(raw) + b".\r\n")
        reply = await protocol.read_response(timeout=timeout)
    except (SMTPServerDisconnected, SMTPTimeoutError):
        client.close()  # as SMTP.data does: the connection is out of step now
        raise
    if reply.code != 250:
        raise SMTPDataError(reply.code, reply.message)
    return reply


def _dot_stuffed(raw: bytes) -> bytes:
    """Every line starting with a dot gets another (RFC 5321, 4.5.2)."""
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _mail_options(client: SMTP, message: PlannedMessage) -> tuple[list[bytes], str]:
    """MAIL FROM parameters: SIZE, 8BITMIME for 8-bit bodies, SMTPUTF8 for UTF-8 headers."""
    options = [b"SIZE=%d" % len(message.raw)] if client.supports_extension("size") else []
    if not message.raw.isascii() and client.supports_extension("8bitmime"):
        options.append(b"BODY=8BITMIME")
    if _needs_smtputf8(message):
        if not client.supports_extension("smtputf8"):
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


async def _reset(client: SMTP) -> bool:
    """RSET after a refused transaction; False if the connection is no longer usable."""
    try:
        await client.rset()
    except _LOST_CONNECTION:
        _drop(client)
        return False
    return True


async def _quit(client: SMTP, timeout: float) -> None:
    """Say goodbye, then drop the connection whatever the server answered."""
    with contextlib.suppress(*_LOST_CONNECTION):
        await client.execute_command(b"QUIT", timeout=timeout)
    _drop(client)


def _drop(client: SMTP) -> None:
    """Close at once: a graceful TLS shutdown waits for the peer and can outlive the run."""
    transport = client.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    client.close()
