"""The busy-machine notice: said once when the trainer's threads wait for a core, never on an idle machine."""
import threading

from training import busy


def test_advice_names_the_wait_and_the_remedy():
    assert busy.advice(ran=9.0, waited=1.0, threads=2, seconds=10) is None                 # 10% waiting: not busy
    said = busy.advice(ran=5.0, waited=5.0, threads=2, seconds=10)
    assert said.startswith("note: this machine is busy: training waited for a CPU core 50% of the last 10 s")
    assert "--set train.threads=1" in said and 'make demo ARGS="--set train.threads=1"' in said
    alone = busy.advice(ran=4.0, waited=6.0, threads=1, seconds=10)
    assert "60%" in alone and "train.threads" not in alone                                  # nothing fewer to try
    assert busy.advice(ran=0.0, waited=0.0, threads=2, seconds=10) is None


def test_the_watch_says_it_once(monkeypatch):
    """Counters of a machine that turns busy after the first look: one notice, however long the run goes on."""
    counters = iter([(0.0, 0.0), (0.0, 0.0), (9.0, 1.0), (14.0, 6.0), (19.0, 11.0), (24.0, 16.0)])
    last = (24.0, 16.0)
    monkeypatch.setattr(busy, "cpu_seconds", lambda: next(counters, last))
    said, told = [], threading.Event()

    def say(message):
        said.append(message)
        told.set()

    with busy.watch(threads=2, say=say, window_s=0.01):
        assert told.wait(30)
    assert len(said) == 1 and "waited for a CPU core 50%" in said[0]


def test_no_watch_where_the_system_does_not_count(monkeypatch):
    monkeypatch.setattr(busy, "cpu_seconds", lambda: None)
    with busy.watch(threads=2, say=lambda message: (_ for _ in ()).throw(AssertionError(message)), window_s=0.01):
        pass


def test_this_system_counts_run_and_wait_times():
    counted = busy.cpu_seconds()
    assert counted is None or (counted[0] > 0 and counted[1] >= 0)
