"""SQLite's one write lock, as the grid takes it (db.py: one writer at a time)."""
import threading

from sqlalchemy import select

from halogrid.db import init_db, make_engine, session_factory, transaction
from halogrid.models import Group


def test_reads_go_on_beside_a_writer_and_writers_take_turns(tmp_path):
    engine = make_engine(str(tmp_path / "grid.db"))
    init_db(engine)
    factory = session_factory(engine)
    writing = threading.Event()
    release = threading.Event()
    second_writer_done = threading.Event()

    def first_writer():
        with transaction(factory) as db:
            db.add(Group(name="first", policy_ids=[], fim_policy_ids=[]))
            db.flush()
            writing.set()
            release.wait(30)

    def second_writer():
        with transaction(factory) as db:
            db.add(Group(name="second", policy_ids=[], fim_policy_ids=[]))
        second_writer_done.set()

    threads = [threading.Thread(target=first_writer)]
    threads[0].start()
    assert writing.wait(30)
    threads.append(threading.Thread(target=second_writer))
    threads[1].start()
    # while the first writer holds the lock: a read sees the committed state at once ...
    with transaction(factory, read_only=True) as db:
        names = set(db.scalars(select(Group.name)))
    assert "first" not in names and "second" not in names
    # ... and the second writer waits for its turn instead of failing
    assert not second_writer_done.wait(0.5)
    release.set()
    for thread in threads:
        thread.join(30)
    assert second_writer_done.is_set()
    with transaction(factory, read_only=True) as db:
        assert {"first", "second"} <= set(db.scalars(select(Group.name)))
    engine.dispose()
