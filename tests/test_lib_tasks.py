"""The one enqueue helper and the transient-error retry of `loyalty_site.lib.tasks`."""

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from loyalty_site.lib import tasks

CALLS: list[tuple] = []


def record(*args, **kwargs) -> None:
    CALLS.append((args, kwargs))


@pytest.fixture(autouse=True)
def _clean():
    CALLS.clear()
    yield
    CALLS.clear()


@pytest.mark.django_db
def test_enqueue_on_commit_sends_after_commit_only_with_a_broker_outside_the_database(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
    sent: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, args)))

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1)
            raise RuntimeError("rolled back")
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)
        assert sent == []  # not before the commit

    assert sent == [("tests.test_lib_tasks.record", (2,))]
    assert CALLS == []  # queued, not run


@pytest.mark.django_db(transaction=True)
def test_with_the_orm_broker_the_queue_row_commits_and_rolls_back_with_the_write(settings):
    from django_q.models import OrmQ

    assert settings.Q_CLUSTER.get("orm") == "default"
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1)
        assert OrmQ.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("rolled back")
    assert OrmQ.objects.count() == 0  # ...and gone with it

    with transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)
    tasks.enqueue_on_commit("tests.test_lib_tasks.record", 3)  # outside a transaction: queued at once

    assert [row.task["args"] for row in OrmQ.objects.order_by("pk")] == [(2,), (3,)]
    assert CALLS == []  # queued, not run


@pytest.mark.django_db
def test_tasks_sync_runs_the_task_inline_after_commit(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True

    with django_capture_on_commit_callbacks(execute=True):
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 3, flag=True)
        assert CALLS == []

    assert CALLS == [((3,), {"flag": True})]


def test_lost_connections_deadlocks_and_their_direct_causes_are_transient_other_errors_are_not():
    wrapped = ValueError("wrapper")
    wrapped.__cause__ = OperationalError("server closed the connection unexpectedly")

    assert tasks.db_error_is_transient(OperationalError("deadlock detected")) is True
    assert tasks.db_error_is_transient(InterfaceError("connection already closed")) is True
    assert tasks.db_error_is_transient(wrapped) is True
    assert tasks.db_error_is_transient(IntegrityError("duplicate key")) is False
    assert tasks.db_error_is_transient(ValueError("bad input")) is False


def test_retry_transient_retries_with_back_off_and_gives_up_after_its_attempts(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", delays.append)
    monkeypatch.setattr(tasks, "db_connections_recover", lambda: None)
    outcomes = [OperationalError("lost"), OperationalError("lost"), "done"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert tasks.retry_transient(flaky) == "done"
    assert delays == [0.2, 0.4]

    def always_lost() -> None:
        raise InterfaceError("gone")

    delays.clear()
    with pytest.raises(InterfaceError):
        tasks.retry_transient(always_lost, attempts=3)
    assert delays == [0.2, 0.4]


def test_retry_transient_does_not_retry_other_errors(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(tasks.time, "sleep", lambda delay: None)

    def duplicate() -> None:
        calls.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        tasks.retry_transient(duplicate)
    assert calls == [1]


class _RecordingRedis:
    """Stands for a redis-py client: records each command (name, key, values)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str, tuple]] = []

    def rpush(self, key: str, *values: str) -> int:
        self.commands.append(("rpush", key, values))
        return len(values)


@pytest.fixture
def redis_broker(monkeypatch, settings):
    """This process's broker replaced by a django-q2 Redis broker on a recording client (no server)."""
    from django_q.brokers.redis_broker import Redis

    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
    broker = Redis.__new__(Redis)  # no connection is made
    broker.list_key, broker.connection = "django_q:loyalty:q", _RecordingRedis()
    monkeypatch.setattr(tasks, "_process_broker", (tasks.os.getpid(), broker))
    return broker


@pytest.mark.django_db
def test_with_redis_many_tasks_of_one_commit_are_one_rpush_of_the_packages_async_task_builds(
    redis_broker, django_capture_on_commit_callbacks
):
    from django_q.signing import SignedPackage

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_many_on_commit("tests.test_lib_tasks.record", [(1,), (2,), (3,)])
        assert redis_broker.connection.commands == []  # nothing before the commit

    [(command, key, packages)] = redis_broker.connection.commands
    unpacked = [SignedPackage.loads(package) for package in packages]
    assert (command, key) == ("rpush", "django_q:loyalty:q")
    assert [(task["func"], task["args"], task["kwargs"]) for task in unpacked] == [
        ("tests.test_lib_tasks.record", (1,), {}),
        ("tests.test_lib_tasks.record", (2,), {}),
        ("tests.test_lib_tasks.record", (3,), {}),
    ]
    assert len({task["id"] for task in unpacked}) == 3
    assert CALLS == []  # queued, not run


@pytest.mark.django_db
def test_with_redis_a_failed_push_is_logged_and_the_write_stands(
    redis_broker, django_capture_on_commit_callbacks, caplog
):
    def refused(key: str, *values: str) -> int:
        raise ConnectionError("redis down")

    redis_broker.connection.rpush = refused
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_many_on_commit("tests.test_lib_tasks.record", [(1,), (2,)])

    assert "enqueue of 2 tasks tests.test_lib_tasks.record failed" in caplog.text


@pytest.mark.django_db
def test_with_tasks_sync_many_tasks_run_inline_even_with_redis(
    redis_broker, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_many_on_commit("tests.test_lib_tasks.record", [(1,), (2,)])

    assert CALLS == [((1,), {}), ((2,), {})]
    assert redis_broker.connection.commands == []


def test_task_send_reuses_one_broker_per_process_and_makes_a_new_one_after_a_fork(monkeypatch):
    made: list[object] = []
    sent: list[object] = []

    def get_broker(list_key=None):
        made.append(object())
        return made[-1]

    monkeypatch.setattr("django_q.brokers.get_broker", get_broker)
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, broker, **kwargs: sent.append(broker))
    monkeypatch.setattr(tasks, "_process_broker", None)

    tasks.task_send("tests.test_lib_tasks.record", 1)
    tasks.task_send("tests.test_lib_tasks.record", 2)
    monkeypatch.setattr(tasks.os, "getpid", lambda: -1)  # as in a forked child
    tasks.task_send("tests.test_lib_tasks.record", 3)

    assert len(made) == 2
    assert sent == [made[0], made[0], made[1]]


class _Mark:
    """A coalesced task's "drain queued" mark, in memory: what `queued` and `request` were asked."""

    def __init__(self) -> None:
        self.set = False
        self.asked: list[str] = []

    def queued(self) -> bool:
        self.asked.append("queued")
        return self.set

    def request(self) -> bool:
        self.asked.append("request")
        taken, self.set = not self.set, True
        return taken


@pytest.fixture
def coalesced(monkeypatch, settings):
    """`tests.test_lib_tasks.record` coalesced into the drain `tests.test_lib_tasks.drain`, sends recorded."""
    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
    mark = _Mark()
    sent: list[tuple] = []
    monkeypatch.setattr(tasks, "task_send", lambda func, *args, **kwargs: sent.append((func, args)))
    monkeypatch.setattr(tasks, "_coalesced", {})
    tasks.task_coalesce(
        "tests.test_lib_tasks.record",
        tasks.Coalescing(
            drain="tests.test_lib_tasks.drain", active=lambda: True, queued=mark.queued, request=mark.request
        ),
    )
    return mark, sent


@pytest.mark.django_db
def test_the_calls_of_one_commit_send_one_drain_after_it_and_none_while_it_is_queued(
    coalesced, django_capture_on_commit_callbacks
):
    mark, sent = coalesced
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for event_id in range(30):
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", event_id)
        tasks.enqueue_many_on_commit("tests.test_lib_tasks.record", [(30,), (31,)])
        assert sent == mark.asked == []  # nothing before the commit

    # one question and one drain for the whole transaction (was 32 tasks)
    assert sent == [("tests.test_lib_tasks.drain", ())]
    assert mark.asked == ["queued", "request"]

    # later commits find the drain queued: one read each, nothing sent
    for event_id in (32, 33):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", event_id)
    assert sent == [("tests.test_lib_tasks.drain", ())]
    assert mark.asked == ["queued", "request", "queued", "queued"]

    # once the drain started (its mark cleared), the next commit sends another
    mark.set = False
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 34)
    assert sent == [("tests.test_lib_tasks.drain", ())] * 2


@pytest.mark.django_db
def test_a_rolled_back_write_asks_for_no_drain_and_the_next_transaction_asks_again(
    coalesced, django_capture_on_commit_callbacks
):
    mark, sent = coalesced
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1)
            raise RuntimeError("rolled back")
        with transaction.atomic():
            with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back drops its callback
                tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)
                raise RuntimeError("rolled back")
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", 3)

    assert sent == [("tests.test_lib_tasks.drain", ())]
    assert mark.asked == ["queued", "request"]


@pytest.mark.django_db
def test_without_coalescing_calls_are_one_task_each(coalesced, settings, django_capture_on_commit_callbacks):
    mark, sent = coalesced
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1, coalesce=False)  # the sweep's re-drive
    settings.TASKS_SYNC = True
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)  # TASKS_SYNC: inline, one by one

    assert sent == [("tests.test_lib_tasks.record", (1,)), ("tests.test_lib_tasks.record", (2,))]
    assert mark.asked == []


class _Drained:
    """
    A drain's world in memory: a queue of pending units (fresh and old), the mark, and the order of what the
    drain did — `started` (mark cleared), `fresh n`/`backlog n` (claims and what they took), `linger`, `sleep`.
    """

    def __init__(self, fresh: list[int], old: int = 0) -> None:
        self.arrivals = list(fresh)  # units arriving before each fresh claim (the first: before the drain)
        self.pending = 0
        self.old = old
        self.held = ""
        self.log: list[str] = []
        self.requests = 0

    def coalescing(self) -> tasks.Coalescing:
        def hold(holder: str) -> bool:
            taken, self.held = not self.held, self.held or holder
            return taken

        def request() -> bool:
            self.requests += 1
            return hold("queued")

        def linger() -> bool:
            self.log.append("linger")
            return hold("lingering")

        def started() -> None:
            self.log.append("started")
            self.held = ""

        return tasks.Coalescing(
            drain="tests.test_lib_tasks.drain",
            active=lambda: True,
            queued=lambda: bool(self.held),
            request=request,
            started=started,
            linger=linger,
        )

    def fresh(self, size: int) -> int:
        self.pending += self.arrivals.pop(0) if self.arrivals else 0
        took = min(size, self.pending)
        self.pending -= took
        self.log.append(f"fresh {took}")
        return took

    def backlog(self, size: int) -> int:
        took = min(size, self.old)
        self.old -= took
        self.log.append(f"backlog {took}")
        return took


@pytest.fixture
def drained(monkeypatch, settings):
    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
    monkeypatch.setattr(tasks, "_coalesced", {})
    monkeypatch.setattr(tasks, "task_send", lambda func, *args, **kwargs: None)

    def make(fresh: list[int], old: int = 0) -> _Drained:
        world = _Drained(fresh, old)
        tasks.task_coalesce("tests.test_lib_tasks.record", world.coalescing())
        monkeypatch.setattr(tasks.time, "sleep", lambda seconds: world.log.append(f"sleep {seconds}"))
        return world

    return make


def _drain(world: _Drained, limit: int = 5, linger: float | None = None) -> int:
    return tasks.drain_run(
        "tests.test_lib_tasks.record", fresh=world.fresh, backlog=world.backlog, limit=limit, seconds=60, linger=linger
    )


def test_a_drain_lingers_after_a_short_claim_and_claims_the_backlog_once(drained):
    # given 2 units when the drain starts, 3 arriving while it lingers, then none
    world = drained([2, 3, 0])

    # when it runs
    taken = _drain(world)

    # then: clear, claim 2 (and the backlog once: empty), linger holding the mark, clear, claim 3 (no backlog
    # claim again), linger, clear, claim nothing and stop — the mark cleared, every unit taken
    assert taken == 5
    assert world.log == [
        "started",
        "fresh 2",
        "backlog 0",
        "linger",
        f"sleep {tasks.DRAIN_LINGER}",
        "started",
        "fresh 3",
        "linger",
        f"sleep {tasks.DRAIN_LINGER}",
        "started",
        "fresh 0",
    ]
    assert world.held == "" and world.pending == 0


def test_a_drain_that_finds_nothing_stops_at_once_and_one_that_finds_a_queued_drain_does_not_linger(drained):
    world = drained([0])
    assert _drain(world) == 0
    assert world.log == ["started", "fresh 0", "backlog 0"]

    # a queued drain holds the mark when this one would linger: that one claims next, this one stops
    world = drained([2])
    original = world.fresh

    def fresh_then_a_write(size: int) -> int:
        took = original(size)
        world.held = "queued"  # a write found no mark and queued a drain
        return took

    world.fresh = fresh_then_a_write  # type: ignore[method-assign]
    assert _drain(world) == 2
    assert world.log == ["started", "fresh 2", "backlog 0", "linger"]
    assert world.held == "queued"


def test_a_drain_takes_a_backlog_batch_after_batch_and_asks_for_a_helper_after_a_full_claim(drained):
    # given 12 old units and none fresh, batches of 5
    world = drained([0], old=12)

    taken = _drain(world, linger=0)

    # then the backlog is claimed while its claims come back full, a helper asked after each full one
    assert taken == 12
    assert world.log == ["started", "fresh 0", "backlog 5", "fresh 0", "backlog 5", "fresh 0", "backlog 2"]
    assert world.requests == 1 and world.held == "queued"  # the second full claim found the helper queued


def test_drain_linger_seconds_zero_turns_lingering_off(drained, settings):
    settings.DRAIN_LINGER_SECONDS = 0
    world = drained([2, 3])

    assert _drain(world) == 2
    assert world.log == ["started", "fresh 2", "backlog 0"]
