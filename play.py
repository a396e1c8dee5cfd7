"""The playground page: your own model in the browser, ``python play.py [--checkpoint runs/toy_words/best.pt]``.

Type a sentence and see its tokens, every attention head, the next-token distribution under a temperature slider,
and a streamed continuation, all computed by the checkpoint you trained. Without --checkpoint it shows the word-level
toy model (``--toy char``: the character-level one), trained first if it is missing. Serves on 127.0.0.1 only unless
--host says otherwise.
"""
import argparse
import ipaddress
import signal
import socket
import sys
from pathlib import Path

from errors import UserError, run_command
from training.toy import DEFAULT_TOY, TOY_CONFIGS, toy_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a .pt file written by train.py, a folder holding a Hugging Face GPT-2, or "
                   "hf:<repo id> (default: the toy model --toy names, trained first if missing)")
    p.add_argument("--toy", choices=sorted(TOY_CONFIGS), default=DEFAULT_TOY,
                   help="without --checkpoint: the word-level toy model (runs/toy_words, the default) or the "
                        "character-level one (runs/toy)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                   "only); anything else lets other machines use the page")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--runs", default="runs", help="where models trained from the page go, under playground/ "
                                                   "(default: runs; the page keeps its 10 newest)")
    return p.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, opened before the model loads, so a taken port is a one-line error at once."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"--host {host!r} is not an address of this machine ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror}"
                        + ("; pick another --port (0 = any free one)" if port else "")) from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def ended_by(signum, frame):
    """SIGTERM, once the server has shut down (uvicorn raises it again then): leave through ``finally``."""
    raise SystemExit(128 + signum)


def run(args) -> None:
    sock = listen(args.host, args.port)
    from training.run_dir import writable_folder

    runs = Path(args.runs).resolve()          # once, for the server and its trainer (which runs in another folder)
    writable_folder(runs / "playground", "the page's run folder (--runs)")
    import uvicorn

    from inference import load_for_inference
    from playground.deadline import HeaderDeadline
    from playground.server import create_app

    checkpoint = args.checkpoint or str(toy_checkpoint(args.toy))
    loaded = load_for_inference(checkpoint, args.device)
    if not is_loopback(args.host):
        print(f"warning: --host {args.host} lets other machines on the network use this page and its model; "
              "there is no login", file=sys.stderr)
    app = create_app(loaded, checkpoint, runs, host=args.host, port=sock.getsockname()[1])
    orphan = app.state.live.orphan()
    if orphan:
        print(f"note: page run {orphan} is still training in a process an earlier server started; it stops by "
              "itself within seconds (saving its step), and the page starts no second run beside it",
              file=sys.stderr)
    print(f"Playground for {checkpoint}: open {url_of(sock)}  (Ctrl-C stops it)", flush=True)
    server = page_server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=5,
                                       timeout_graceful_shutdown=GRACE_S, limit_concurrency=MAX_CONNECTIONS,
                                       http=HeaderDeadline))
    signal.signal(signal.SIGTERM, ended_by)
    if hasattr(signal, "SIGHUP"):             # a closed terminal: shut down as for Ctrl-C
        signal.signal(signal.SIGHUP, server.handle_exit)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.live.stop_and_wait()          # a run trained from the page is saved, never left training alone


GRACE_S = 5                 # open answers (a generation, an event stream) get this long to end at shut-down
MAX_CONNECTIONS = 200       # beyond that, a new connection is answered 503 at once instead of waiting


def page_server(config):
    """uvicorn's server, whose shut-down (Ctrl-C, SIGTERM, SIGHUP) first asks the page's trainer to stop (it saves)
    and ends the training event streams, so that no open page keeps the server from exiting."""
    import uvicorn

    class PageServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            self.config.app.state.shutdown()
            super().handle_exit(sig, frame)

    return PageServer(config)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
