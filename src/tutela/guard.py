"""The Guard: the flows of DESIGN.md, orchestration only.

It owns no judgement of its own: detectors and the prompt reader return signals, the policy
turns them into a verdict, the store records the decision. Keeping it thin means every rule
can be tested without the Guard, and every flow reads top to bottom in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tutela.accounts.monitor import STALE_RETRIES, AccountMonitor, AccountWrite, Gate, Screened
from tutela.accounts.repository import AccountRepository, StaleAccountState
from tutela.accounts.tiers import Feature
from tutela.config import Settings
from tutela.decision import CheckKind, Decision
from tutela.errors import PromptError, StoreUnavailable
from tutela.image.inspect import ImageInput, ImageInspector, Inspection
from tutela.image.output import OutputResult, image_decision
from tutela.policy import Judgement, Policy
from tutela.store.database import Store
from tutela.store.decisions import decision_row
from tutela.store.group_commit import connection_of
from tutela.text.reader import PromptReader, PromptReading

if TYPE_CHECKING:  # provenance loads the C2PA library: imported when first used
    from tutela.provenance.service import Provenance, TraceResult


@dataclass(slots=True)
class _Ahead:
    """What a batch of checks worked out for one of them before its turn
    (:meth:`Guard._ahead`); a lone check has nothing ahead. ``screened`` is ``reading``'s."""

    gate: Gate | None = None
    reading: PromptReading | None = None
    screened: Screened | None = None


@dataclass(frozen=True, slots=True)
class PromptCheck:
    """One prompt check of :meth:`Guard.check_prompts` (the arguments of check_prompt)."""

    text: str
    account: str | None = None
    locale: str | None = None
    at: datetime | None = None


DecisionCallback = Callable[[Decision, Session], None]
"""Called with each decision and the open session of the transaction that records it."""


class Guard:
    """Tutela's public entry point. Build it with :meth:`open`."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        reader: PromptReader,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.reader = reader
        self.store = store or Store.open(settings.effective_database_url)
        self._decision_callbacks: list[DecisionCallback] = []
        self.accounts = AccountMonitor(
            AccountRepository(
                self.store.engine, self.store.ensure_schema, self.store.admin,
                joined=self.store.joined_connection,
                cache_size=settings.account_cache_size,
            ),
            policy,
            reader,
        )
        # every recorded decision becomes a leaf of the tamper-evident audit log (evidence/)
        from tutela.evidence.service import attach

        self.audit = attach(self)

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        config: Path | str | None = None,
        **overrides: Any,
    ) -> Guard:
        """Open a guard on embedded defaults, or on ``config`` (a YAML file) and overrides.

        ``data_dir`` gives an isolated store (one per evaluation run, one per test).
        """
        if data_dir is not None:
            overrides["data_dir"] = Path(data_dir)
        settings = Settings.load(config, **overrides)
        policy = Policy.load(settings.policy_file)
        reader = PromptReader(max_chars=settings.max_prompt_chars)
        return cls(settings, policy, reader, Store.open(settings.effective_database_url))

    # --- recording ---------------------------------------------------------------------------
    def on_decision(self, callback: DecisionCallback) -> DecisionCallback:
        """Run ``callback(decision, session)`` for every decision this Guard records.

        It runs inside the transaction that stores the decision, after the insert and before
        the commit, in the thread that records it, so whatever it writes through ``session``
        (an evidence-log entry, account state) commits atomically with the decision. If it
        raises, nothing is committed and the check raises: no answer goes out whose record
        is incomplete. Keep callbacks short; they sit on the request path. Concurrent
        decisions share one transaction (group commit), and a batch of checks
        (:meth:`check_prompts`) runs the callbacks of all its decisions at its end, in
        order; if such a transaction fails, each decision is retried alone, so a callback
        may run more than once for one decision and must write only through ``session``.
        Usable as a decorator; returns ``callback``.
        """
        self._decision_callbacks.append(callback)
        return callback

    def record(
        self,
        decision: Decision,
        *,
        prompt: str | None = None,
        account_write: Callable[[Connection], None] | None = None,
    ) -> None:
        """Store ``decision`` (and run the callbacks) before anyone sees it.

        ``account_write`` (from the account monitor) stores what the check changed in the
        account's state in the same transaction, so both commit together or not at all.

        Raises :class:`tutela.errors.StoreUnavailable` when the database cannot be used, so
        callers fail closed instead of answering with an unrecorded decision.
        """
        row = decision_row(
            decision,
            prompt=prompt,
            allowed_prompt_days=self.policy.retention.allowed_prompt_days,
        )
        callbacks = tuple(self._decision_callbacks)
        decisions = self.store.decisions

        def write(session: Session) -> None:
            decisions.add(session, row)
            if account_write is not None:
                # the transaction's Connection as the store handed it over, not looked up
                # through the Session again (store/group_commit.py, connection_of)
                account_write(connection_of(session))

        def run_callbacks(session: Session) -> None:
            for callback in callbacks:
                callback(decision, session)

        # group commit: returns once committed. The callbacks (the audit leaf) run ``last``:
        # inside a batch of checks (check_prompts), at its end, in decision order. The
        # monitor's in-memory index takes what was committed (``then``)
        self.store.write(
            write,
            last=run_callbacks if callbacks else None,
            then=getattr(account_write, "committed", None),
        )

    def read_prompt(self, text: str) -> PromptReading:
        """The prompt's signals without a decision (for evaluation and debugging)."""
        return self.reader.read(text)

    def check_prompt(
        self,
        text: str,
        account: str | None = None,
        *,
        locale: str | None = None,
        at: datetime | None = None,
    ) -> Decision:
        """Check a generation prompt. Raises :class:`tutela.errors.PromptError` on bad input.

        ``at`` (timezone-aware) replays a recorded session with its own timestamps.
        """
        at = at or datetime.now(UTC)
        self.reader.validate(text)
        return self._prompt(text, account, locale, at, _Ahead())

    def _prompt(
        self, text: str, account: str | None, locale: str | None, at: datetime, ahead: _Ahead
    ) -> Decision:
        """The prompt check's flow, on a validated ``text``; ``ahead`` holds what a batch
        worked out for it before its turn (:meth:`_ahead`), the rest is worked out here."""

        def read() -> PromptReading:
            if ahead.reading is None:  # read once, however often it is settled
                ahead.reading = self.reader.read(text)
            return ahead.reading

        def gate() -> Gate:
            return self.accounts.before(account, Feature.TEXT_TO_IMAGE, at)

        def settle(g: Gate) -> tuple[Decision, AccountWrite | None]:
            reading = None if g.halted else read()  # suspended: no detector runs
            screened = (ahead.screened if reading is not None and ahead.screened is not None
                        else self.accounts.screen(account, reading))  # fmt: skip
            outcome = self.accounts.finish(g, screened, g.policy.judge_prompt(screened.signals))
            decision = Decision(
                verdict=outcome.verdict,
                categories=outcome.categories,
                reasons=outcome.reasons,
                signals=outcome.signals,
                kind=CheckKind.PROMPT,
                account=account,
                account_action=outcome.action,
                report=outcome.report,
                language=(reading.language if reading else None) or locale,
                created_at=at,
            )
            return decision, outcome.write

        return self._decide(ahead.gate or gate(), gate, settle, prompt=text)

    def _ahead(self, checks: Sequence[PromptCheck]) -> list[tuple[datetime, _Ahead]]:
        """Each check's time and what a batch can work out for it before its turn, stage by
        stage over the whole batch: every account's gate, then every prompt's reading, then
        their screening (fingerprints, computed together, and the indexes' look-ups:
        :meth:`AccountMonitor.screen_all`).

        Why: the checks of a batch then run each stage's code back to back, where it stays
        warm in the core's caches (a worker shares its core with the event loop, the other
        worker and the database: two workers on PostgreSQL spent ~8% less CPU per request
        this way, docs/service.md), and the fingerprints' NumPy work is paid once a batch.
        Only work without side effects moves: an account that an earlier check of the
        batch may change is gated at its own turn, as alone; a prompt is read ahead unless
        its account was halted (suspended: no detector runs), and read at its turn if its
        account turns out not to be.
        """
        halted: dict[str, bool] = {}  # account: halted at its gate ahead
        ahead: list[tuple[datetime, _Ahead]] = []
        unread: list[bool] = []  # per check: not to be read ahead (its account halted)
        for c in checks:
            at = c.at or datetime.now(UTC)
            if c.account is not None and c.account in halted:
                ahead.append((at, _Ahead()))  # an earlier check may change it: gated later
                unread.append(halted[c.account])
                continue
            gate = self.accounts.before(c.account, Feature.TEXT_TO_IMAGE, at)
            if c.account is not None:
                halted[c.account] = gate.halted
            ahead.append((at, _Ahead(gate)))
            unread.append(gate.halted)
        sent: list[tuple[str | None, PromptReading]] = []
        read: list[_Ahead] = []
        for c, (_, a), skip in zip(checks, ahead, unread, strict=True):
            if not skip:
                a.reading = self.reader.read(c.text)
                sent.append((c.account, a.reading))
                read.append(a)
        for a, screened in zip(read, self.accounts.screen_all(sent), strict=True):
            a.screened = screened
        return ahead

    def check_prompts(self, checks: Sequence[PromptCheck]) -> list[Decision | Exception]:
        """Check several prompts in one transaction; one result per check, in order.

        Each result is the :class:`Decision`, stored, or the exception that check raised (a
        :class:`tutela.errors.PromptError` for bad input, :class:`StoreUnavailable` when the
        database cannot be used). The checks settle one after the other exactly as
        :meth:`check_prompt` would settle them, each seeing the account state the earlier
        ones left (what needs nothing an earlier check writes is worked out ahead for the
        whole batch, stage by stage: :meth:`_ahead`), but they share one transaction and one
        commit (:meth:`Store.batch`), which on a busy service costs less than the check
        itself. A lone check is a batch of one: its
        reads and writes share one transaction (on PostgreSQL 2 or 3 round trips, not ~10).
        Nothing is returned before the commit. If a check of the same account on another
        worker made an account the batch read stale (:class:`StaleAccountState`, also what
        a remembered row that moved raises: accounts/cache.py), the batch is rolled back
        and runs once more, reading its accounts afresh. If any check fails inside the
        batch (or it is stale again), the batch is rolled back whole and every check runs
        again alone, so one bad check fails only itself.
        """
        results: list[Decision | Exception | None] = [None] * len(checks)
        todo: list[int] = []
        for i, c in enumerate(checks):
            try:
                self.reader.validate(c.text)  # bad input fails alone, before any write
                todo.append(i)
            except PromptError as exc:
                results[i] = exc
        batched = self._batched([checks[i] for i in todo]) if todo else None
        if batched is not None:
            for i, r in zip(todo, batched, strict=True):
                results[i] = r
            todo = []
        for i in todo:  # the batch rolled back: each check alone
            try:
                results[i] = self._check(checks[i])
            except Exception as exc:
                results[i] = exc
        return cast(list[Decision | Exception], results)  # every slot was filled above

    def _batched(self, checks: list[PromptCheck]) -> list[Decision | Exception] | None:
        """``checks`` in one :meth:`Store.batch`: their results, or None when the batch
        rolled back and each must run alone. A stale batch runs once more first, its rows
        read afresh."""
        for _ in range(2):
            try:
                with self.store.batch():
                    self.accounts.prefetch(c.account for c in checks)
                    return [self._prompt(c.text, c.account, c.locale, at, ahead)
                            for c, (at, ahead) in zip(checks, self._ahead(checks), strict=True)]
            except StoreUnavailable as exc:  # the database is gone: every check fails alike
                return [exc] * len(checks)
            except StaleAccountState:
                continue  # rolled back; the stale rows are read afresh
            except Exception:
                return None
        return None  # stale twice

    def _check(self, c: PromptCheck) -> Decision:
        return self.check_prompt(c.text, c.account, locale=c.locale, at=c.at)

    def _decide(
        self,
        gate: Gate,
        regate: Callable[[], Gate],
        settle: Callable[[Gate], tuple[Decision, AccountWrite | None]],
        *,
        prompt: str | None,
    ) -> Decision:
        """Settle the decision on the account as ``gate`` read it and record it.

        A check of the same account that committed in between makes this one's account
        write stale (:class:`StaleAccountState`, nothing written): the account is read again
        (``regate``) and the decision settled again on it, so no strike or action is lost
        to a race. After ``STALE_RETRIES`` rounds the check fails closed (StoreUnavailable,
        a 503); each round at least one of the competing checks commits.
        """
        for _ in range(STALE_RETRIES):
            decision, account_write = settle(gate)
            try:
                self.record(decision, prompt=prompt, account_write=account_write)
            except StaleAccountState:
                if self.store.joined_connection() is not None:
                    # inside a batch this check's decision row is already in the shared
                    # transaction: the batch must roll back and run its checks one by one
                    raise
                gate = regate()
                continue
            return decision
        raise StoreUnavailable("the account kept changing while it was being checked; retry")

    # --- images (issue 4; docs/image-guard.md) ----------------------------------------------
    @cached_property
    def images(self) -> ImageInspector:
        """Decoding, PDQ, bank matching and detectors for the image flows. Built on first
        use; models load on the first image (or :meth:`ImageInspector.warm_up`). Assign
        another inspector to change the detectors."""
        from tutela.hashes.matcher import BankMatcher
        from tutela.hashes.repository import BankRepository
        from tutela.image.factory import build_inspector

        return build_inspector(self.settings, BankMatcher(BankRepository(self.store)))

    def check_output(
        self,
        image: ImageInput,
        account: str | None = None,
        *,
        prompt: str | None = None,
        generation: Any = None,
        at: datetime | None = None,
    ) -> OutputResult:
        """Check a generated image (bytes or PIL) before it leaves the generator.

        ``prompt`` is the prompt that produced it: a prompt about a child makes the check
        strict, and if this output is blocked as sexual_minors the prompt joins the learned
        prompt bank. Raises :class:`tutela.errors.ImageError` / ``PromptError`` on bad input.
        """
        at = at or datetime.now(UTC)
        if prompt:
            self.reader.validate(prompt)
        gate = self.accounts.before(account, Feature.TEXT_TO_IMAGE, at)
        # suspended: no detector runs, neither the prompt reader nor the image models; the
        # hash banks still do (known material is reported whoever sends it)
        reading = self.reader.read(prompt) if prompt and not gate.halted else None
        inspection = self.images.inspect(image, detect=not gate.halted)
        prompt_signals = reading.signals if reading else []
        decision = self._settle_image(
            gate, lambda g: g.policy.judge_image(inspection.signals, prompt_signals=prompt_signals),
            lambda: self.accounts.before(account, Feature.TEXT_TO_IMAGE, at),
            inspection, CheckKind.OUTPUT, account, at, image,
            reading=reading, prompt=prompt, learn_prompt=True,
        )
        result = OutputResult(decision, generation=generation, inspection=inspection)
        if decision.allowed:
            # Provenance (issue 6): watermark, registry, then the C2PA manifest; the caller
            # publishes result.image_bytes. A blocked output gets no bytes back.
            from tutela.provenance.service import decoded_from_inspection

            marked = self.provenance.mark(
                decoded_from_inspection(inspection), account=account, prompt=prompt,
                decision_id=decision.id,
                external_ref=None if generation is None else str(generation)[:256],
            )
            result.image_bytes, result.media_type = marked.data, marked.media_type
            result.provenance_id = marked.generation.id
        return result

    @cached_property
    def provenance(self) -> Provenance:
        """Marking and tracing (watermark, output registry, C2PA); built on first use."""
        from tutela.provenance.factory import build_provenance

        return build_provenance(self.settings, self.store)

    def trace(self, image: bytes) -> TraceResult:
        """Where a found image (encoded bytes) came from: manifest, watermark or registry.

        The result never carries the account; :meth:`Provenance.reveal` adds it for the
        review and admin scopes and logs the lookup.
        """
        return self.provenance.trace(image)

    def check_edit(
        self,
        text: str,
        source_image: ImageInput,
        account: str | None = None,
        *,
        at: datetime | None = None,
    ) -> Decision:
        """Check an edit instruction together with the uploaded photo it would change."""
        at = at or datetime.now(UTC)
        self.reader.validate(text)
        gate = self.accounts.before(account, Feature.IMAGE_EDIT, at)
        # suspended: blocked before any detector runs (the hash banks still match the photo)
        reading = None if gate.halted else self.reader.read(text)
        inspection = self.images.inspect(source_image, detect=not gate.halted)
        self.accounts.image_gate(gate, inspection.signals)  # a real person: stricter age rule
        prompt_signals = reading.signals if reading else []

        def regate() -> Gate:
            fresh = self.accounts.before(account, Feature.IMAGE_EDIT, at)
            self.accounts.image_gate(fresh, inspection.signals)
            return fresh

        def judge(g: Gate) -> Judgement:
            signals = inspection.signals
            return g.policy.judge_image(signals, prompt_signals=prompt_signals, edit=True)

        return self._settle_image(
            gate, judge, regate, inspection, CheckKind.EDIT, account, at, source_image,
            reading=reading, prompt=text,
        )

    def check_upload(
        self, image: ImageInput, account: str | None = None, *, at: datetime | None = None
    ) -> Decision:
        """Check an image a user uploads or shares (hash banks and detectors)."""
        at = at or datetime.now(UTC)
        gate = self.accounts.before(account, Feature.UPLOAD, at)
        inspection = self.images.inspect(image, detect=not gate.halted)  # suspended: banks only
        return self._settle_image(
            gate, lambda g: g.policy.judge_image(inspection.signals),
            lambda: self.accounts.before(account, Feature.UPLOAD, at),
            inspection, CheckKind.UPLOAD, account, at, image,
        )

    def _settle_image(
        self,
        gate: Gate,
        judge: Callable[[Gate], Judgement],
        regate: Callable[[], Gate],
        inspection: Inspection,
        kind: CheckKind,
        account: str | None,
        at: datetime,
        image: ImageInput,
        *,
        reading: PromptReading | None = None,
        prompt: str | None = None,
        learn_prompt: bool = False,
    ) -> Decision:
        """The tail every image flow shares: the policy's judgement at the account's risk
        (``judge``), the account's ladder, the decision, recording it and sealing blocked
        content in the evidence vault (issue 7). If the account changed while this ran,
        ``regate`` reads it again and the tail runs again on it (:meth:`_decide`; the
        detectors do not run again)."""
        prompt_signals = reading.signals if reading else ()

        def settle(g: Gate) -> tuple[Decision, AccountWrite | None]:
            judgement, action, account_write = self.accounts.settle_image(
                g, judge(g), prompt_signals, learn_prompt=prompt if learn_prompt else None
            )
            decision = image_decision(
                judgement, inspection, kind, account, prompt_signals,
                reading.language if reading else None,
            )
            decision.account_action, decision.created_at = action, at
            return decision, account_write

        decision = self._decide(gate, regate, settle, prompt=prompt)
        self.audit.preserve_image(decision, image)
        return decision
