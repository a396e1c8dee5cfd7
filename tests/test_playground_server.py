"""The page server as a service on this machine, against a real ``play.py`` on a free port of 127.0.0.1: who can
reach it (its own address only; changes only as JSON from its own page), what one client can cost the others (a
body in one-byte chunks, fifty event listeners), and what happens to the page's trainer when the server is stopped
or killed (it stops, saving; a restarted server starts no second run beside one still training)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from playground.load import start_server
from tests.conftest import ROOT, run_cli
from training.run_dir import RunLock

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "lr": 0.01, "max_iters": 5000}
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc")


@pytest.fixture
def server(play_checkpoint, tmp_path):
    process, url = start_server("--checkpoint", play_checkpoint, "--runs", tmp_path)
    yield process, int(url.rstrip("/").rsplit(":", 1)[1])
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=60)


def ask(port, method, path, body=None, headers=None, host=None, timeout=30):
    """(status, JSON answer) of one request; ``host`` replaces the Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.putrequest(method, path, skip_host=True)
    connection.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    data = json.dumps(body).encode() if body is not None else b""
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders(data)
    response = connection.getresponse()
    answer = response.status, json.loads(response.read() or b"null")
    connection.close()
    return answer


JSON = {"Content-Type": "application/json"}


def timed_health(port) -> float:
    started = time.monotonic()
    assert ask(port, "GET", "/api/health")[0] == 200
    return time.monotonic() - started


def trainers_of(pid: int) -> list[int]:
    """The train.py processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"train.py" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def until(condition, seconds=120, what="condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: still not true after {seconds} s"
        time.sleep(0.1)


def listening(port) -> socket.socket:
    """A connection following /api/train/events, once its first status has come."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(f"GET /api/train/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    while b"event: status" not in received:
        chunk = s.recv(65536)
        assert chunk, received
        received += chunk
    return s


def training(port, tmp_path) -> tuple[str, Path]:
    """A run started from the page that has taken steps; its id and folder."""
    status, answer = ask(port, "POST", "/api/train", TINY, JSON)
    assert status == 200, answer
    run_dir = tmp_path / "playground" / answer["run"]
    until(lambda: ask(port, "GET", "/api/train")[1]["losses"], what="the run logs its first steps")
    return answer["run"], run_dir


def test_only_this_servers_own_address_is_answered(server):
    _, port = server
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert ask(port, "GET", "/api/model", host=host)[0] == 200, host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", ""):
        status, answer = ask(port, "GET", "/api/model", host=host)
        assert status == 403 and "its own address only" in answer["error"], host
    assert ask(port, "GET", "/", host=f"rebound.example:{port}")[0] == 403


def test_changes_come_only_as_json_from_this_servers_page(server):
    _, port = server
    no_cors = ask(port, "POST", "/api/train/stop", headers={"Content-Type": "text/plain",
                                                            "Origin": "http://evil.example"})
    assert no_cors[0] == 403 and "own page" in no_cors[1]["error"]
    assert ask(port, "POST", "/api/train/stop", headers={"Content-Type": "text/plain"})[0] == 415
    assert ask(port, "POST", "/api/train/stop", headers=JSON)[1] == {"error": "the request needs a JSON body"}
    assert ask(port, "POST", "/api/train/stop", {}, {**JSON, "Origin": "http://evil.example"})[0] == 403
    assert ask(port, "POST", "/api/train/stop", {}, {**JSON, "Origin": "null"})[0] == 403
    assert ask(port, "POST", "/api/train/stop", {}, {**JSON, "Origin": f"http://127.0.0.1:{port}"}) == \
        (200, {"stopping": False})


def test_a_body_in_one_byte_chunks_costs_the_others_little(server):
    _, port = server
    body = b'{"text": "This animal barks."' + b" " * 20_000 + b"}"         # 20,000 chunks (JSON allows the spaces)
    answered = {}

    def send_slowly():
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(f"POST /api/tokens HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode())
            started = time.monotonic()
            for i in range(0, len(body), 256):              # many one-byte chunks per packet, as a script sends them
                s.sendall(b"".join(b"1\r\n" + body[j:j + 1] + b"\r\n" for j in range(i, min(i + 256, len(body)))))
            s.sendall(b"0\r\n\r\n")
            answered["status"] = s.recv(64).split()[1]
            answered["seconds"] = time.monotonic() - started

    sender = threading.Thread(target=send_slowly)
    sender.start()
    slowest = max(timed_health(port) for _ in range(20))
    sender.join(timeout=120)
    assert answered["status"] == b"200" and answered["seconds"] < 20, answered
    assert slowest < 2.0, f"/api/health took {slowest:.2f} s during a one-byte-chunk body"


def test_headers_sent_too_slowly_lose_their_connection(server):
    """A client that starts a request and never finishes its headers is cut off after HEADER_SECONDS, and the
    server answers others meanwhile; a whole request on a kept-alive connection is answered as before."""
    from playground.deadline import HEADER_SECONDS
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_SECONDS + 30) as slow:
        slow.sendall(f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
        started = time.monotonic()
        assert timed_health(port) < 2.0
        assert slow.recv(64) == b""                                  # closed by the server, without an answer
        waited = time.monotonic() - started
    assert HEADER_SECONDS - 1 < waited < HEADER_SECONDS + 10, waited
    assert ask(port, "GET", "/api/health")[0] == 200


def test_fifty_event_listeners_leave_the_server_answering(server, tmp_path):
    _, port = server
    training(port, tmp_path)
    listeners = []
    try:
        for _ in range(50):
            listeners.append(listening(port))
        assert max(timed_health(port) for _ in range(5)) < 1.0
    finally:
        for s in listeners:
            s.close()
        assert ask(port, "POST", "/api/train/stop", {}, JSON)[0] == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL, signal.SIGINT])
def test_a_stopped_or_killed_server_leaves_no_trainer_and_a_restart_trains_one_run(server, tmp_path,
                                                                                  play_checkpoint, sig):
    process, port = server
    run, run_dir = training(port, tmp_path)
    [trainer] = trainers_of(process.pid)
    events = listening(port)                                  # a page following the run
    process.send_signal(sig)
    process.wait(timeout=60)                                  # the open event stream did not keep it running
    until(lambda: not alive(trainer), seconds=60, what="the trainer stops with its server")
    assert (run_dir / "last.pt").is_file()                    # it saved when it stopped
    events.settimeout(10)
    while events.recv(65536):                                 # the stream has ended
        pass
    events.close()
    restarted, url = start_server("--checkpoint", play_checkpoint, "--runs", tmp_path)
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert run in ask(port, "GET", "/api/train")[1]["runs"]
        status, answer = ask(port, "POST", "/api/train", TINY, JSON)
        assert status == 200, answer
        assert len(trainers_of(restarted.pid)) == 1
        assert ask(port, "POST", "/api/train/stop", {}, JSON)[0] == 200
    finally:
        restarted.terminate()
        restarted.wait(timeout=60)
    assert restarted.returncode == 128 + signal.SIGTERM and not trainers_of(restarted.pid)


def test_a_run_still_training_in_another_process_is_found_and_not_doubled(play_checkpoint, tmp_path):
    orphan = tmp_path / "playground" / "20000101-000000"
    orphan.mkdir(parents=True)
    with RunLock(orphan):                                     # a trainer no server of ours started holds it
        process, url = start_server("--checkpoint", play_checkpoint, "--runs", tmp_path)
        try:
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            assert ask(port, "GET", "/api/train")[1]["orphan"] == orphan.name
            status, answer = ask(port, "POST", "/api/train", TINY, JSON)
            assert status == 409 and f"run {orphan.name} is still training in a process" in answer["error"]
            assert not trainers_of(process.pid)
        finally:
            process.terminate()
            _, err = process.communicate(timeout=60)
    assert f"note: page run {orphan.name} is still training" in err


def test_the_runs_folder_is_checked_at_start_and_made_absolute(play_checkpoint, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    result = run_cli("play.py", "--checkpoint", play_checkpoint, "--port", "0", "--runs", a_file)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"error: cannot write to the page's run folder (--runs) {a_file}/playground" in result.stderr
    elsewhere = tmp_path / "elsewhere"                       # started from another folder, with a relative --runs
    elsewhere.mkdir()
    process = subprocess.Popen([sys.executable, ROOT / "play.py", "--port", "0", "--checkpoint", play_checkpoint,
                                "--runs", "my-runs"], cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = int(process.stdout.readline().split("open http://127.0.0.1:")[1].split("/")[0])
        status, answer = ask(port, "POST", "/api/train", {**TINY, "max_iters": 10}, JSON)
        assert status == 200, answer
        until(lambda: ask(port, "GET", "/api/train")[1]["state"] != "training", what="the run ends")
        assert ask(port, "GET", "/api/train")[1]["state"] == "finished"
        assert (elsewhere / "my-runs" / "playground" / answer["run"] / "best.pt").is_file()
    finally:
        process.terminate()
        process.wait(timeout=60)
